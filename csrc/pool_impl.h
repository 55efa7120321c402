/* pool_impl.h - dtype-generic bodies of pool.c, included once per type with T (element
 * type), SFX (name suffix) and ACC (average pooling's accumulator: double for both). Max
 * pooling selects, never sums; backward passes add into dx in the reference's order. */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(NNF_CAT(name, SFX), NNF_ISA_TAG)

/* Window rows/columns [*lo, *hi) of a window starting at o0 that fall inside [0, n). */
static inline void NNF_FN(nnf_pool_clip_)(nnf_index o0, nnf_index f, nnf_index n,
                                          nnf_index *lo, nnf_index *hi)
{
    *lo = o0 < 0 ? -o0 : 0;
    *hi = n - o0 < f ? n - o0 : f;
}

/* Shared argument check; fills OH, OW. The window must fit in an int32 offset. */
static inline int NNF_FN(nnf_pool_geom_)(nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                                         nnf_index PH, nnf_index PW, nnf_index stride,
                                         nnf_index pad, nnf_index *OH, nnf_index *OW)
{
    *OH = nnf_conv_out_size(H, PH, stride, pad);
    *OW = nnf_conv_out_size(W, PW, stride, pad);
    if (N < 0 || C < 0 || *OH < 0 || *OW < 0 || PH > INT32_MAX / PW) return NNF_EINVAL;
    return NNF_OK;
}

/* The maximum of one window and its offset: rows [i0, i1) and columns [j0, j1) of the window
 * at (h0, w0) are inside the plane; the rest is padding (-inf). Two branch-free passes (on
 * random data a branch per element mispredicts half the time: measured 2-3x slower).
 * 1: the largest number (v > m ? v : m is one maxss) and whether a NaN is present; padding
 * never raises m, so it is skipped. 2: the first offset holding it (the first NaN if any),
 * scanning backwards so the last hit is the first in row-major order. No value exceeds m,
 * so v >= m means v == m: one flag and a masked update (a select GCC would turn into a
 * branch). An all -inf window gives offset 0, as numpy's argmax. */
NNF_POOL_INLINE void NNF_FN(nnf_window_max_)(
    const T *NNF_RESTRICT xp, nnf_index W, nnf_index PW, nnf_index h0, nnf_index w0,
    nnf_index i0, nnf_index i1, nnf_index j0, nnf_index j1, T *best, int32_t *arg)
{
    T m = (T)-INFINITY;
    int nan_seen = 0;
    for (nnf_index i = i0; i < i1; ++i) {
        const nnf_index base = (h0 + i) * W + w0;
        for (nnf_index j = j0; j < j1; ++j) {
            const T v = xp[base + j];
            m = v > m ? v : m;
            nan_seen |= v != v;
        }
    }
    int32_t k = 0;
    for (nnf_index i = i1 - 1; i >= i0; --i) {
        const nnf_index base = (h0 + i) * W + w0;
        for (nnf_index j = j1 - 1; j >= j0; --j) {
            const T v = xp[base + j];
            const int32_t hit = nan_seen ? v != v : v >= m;
            k += ((int32_t)(i * PW + j) - k) & -hit;
        }
    }
    if (nan_seen) /* the NaN itself, payload included */
        m = xp[(h0 + k / PW) * W + w0 + k % PW];
    else if (m == (T)-INFINITY) /* every element, padding too, is -inf */
        k = 0;
    *best = m;
    *arg = k;
}

/* t ? a : b on the bit patterns, without a branch (a compare-and-branch on random data
 * mispredicts half the time; GCC turns a plain ?: on floats into exactly that). */
static inline T NNF_FN(nnf_pick_)(int t, T a, T b)
{
    U ua, ub, r;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    const U mask = (U)0 - (U)t;
    r = (ua & mask) | (ub & ~mask);
    T out;
    memcpy(&out, &r, sizeof out);
    return out;
}

/* The nets' case: 2x2 windows, stride 2, no padding, one row of windows at a time: four
 * loads and three branch-free steps per window, same rule as nnf_window_max_: a later
 * element wins if it is larger, or a NaN while the best so far is not. */
static void NNF_FN(nnf_maxpool2x2_row_)(const T *NNF_RESTRICT r0, const T *NNF_RESTRICT r1,
                                        nnf_index OW, T *NNF_RESTRICT op,
                                        int32_t *NNF_RESTRICT ap)
{
    if (sizeof(T) == sizeof(float)) {
        /* selects on bit patterns: GCC vectorises this loop for float */
        for (nnf_index ow = 0; ow < OW; ++ow) {
            const T v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
            T m = v[0];
            U k = 0; /* as wide as T, so that the loop vectorises */
            for (U q = 1; q < 4; ++q) {
                const int t = (m == m) & ((v[q] > m) | (v[q] != v[q]));
                m = NNF_FN(nnf_pick_)(t, v[q], m);
                k += (q - k) & ((U)0 - (U)t);
            }
            op[ow] = m;
            ap[ow] = (int32_t)k;
        }
        return;
    }
    /* double (not vectorised by GCC): the max by maxsd, then the first element equal to
     * it as the lowest set bit of a 4-bit mask; a NaN (rare, a predictable branch) wins.
     * Measured 4.6 -> 1.9 ms for (100, 30, 24, 24) against the select chain above. */
    for (nnf_index ow = 0; ow < OW; ++ow) {
        const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        const T ab = b > a ? b : a, cd = d > c ? d : c;
        T m = cd > ab ? cd : ab;
        unsigned hits = (unsigned)(a == m) | (unsigned)(b == m) << 1
                        | (unsigned)(c == m) << 2 | (unsigned)(d == m) << 3;
        const unsigned nans = (unsigned)(a != a) | (unsigned)(b != b) << 1
                              | (unsigned)(c != c) << 2 | (unsigned)(d != d) << 3;
        if (nans) {
            const T v[4] = {a, b, c, d};
            hits = nans;
            m = v[nnf_lowest_bit(nans)];
        }
        op[ow] = m;
        ap[ow] = (int32_t)nnf_lowest_bit(hits);
    }
}

int NNF_FN(nnf_maxpool_fwd_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index H,
                             nnf_index W, nnf_index PH, nnf_index PW, nnf_index stride,
                             nnf_index pad, T *NNF_RESTRICT out, int32_t *NNF_RESTRICT argmax,
                             int n_threads)
{
    nnf_index OH, OW;
    if (NNF_FN(nnf_pool_geom_)(N, C, H, W, PH, PW, stride, pad, &OH, &OW)) return NNF_EINVAL;
    const nnf_index planes = N * C;
    const int parallel = n_threads > 1 && planes * OH * OW * PH * PW >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index p = 0; p < planes; ++p) {
        const T *xp = x + p * H * W;
        T *op = out + p * OH * OW;
        int32_t *ap = argmax + p * OH * OW;
        if (PH == 2 && PW == 2 && stride == 2 && pad == 0) {
            for (nnf_index oh = 0; oh < OH; ++oh)
                NNF_FN(nnf_maxpool2x2_row_)(xp + 2 * oh * W, xp + (2 * oh + 1) * W, OW,
                                            op + oh * OW, ap + oh * OW);
            continue;
        }
        for (nnf_index oh = 0; oh < OH; ++oh) {
            const nnf_index h0 = oh * stride - pad;
            nnf_index i0, i1;
            NNF_FN(nnf_pool_clip_)(h0, PH, H, &i0, &i1);
            for (nnf_index ow = 0; ow < OW; ++ow) {
                const nnf_index w0 = ow * stride - pad;
                nnf_index j0, j1;
                NNF_FN(nnf_pool_clip_)(w0, PW, W, &j0, &j1);
                T best;
                int32_t k;
                if (PH == 2 && PW == 2 && i0 == 0 && i1 == 2 && j0 == 0 && j1 == 2)
                    /* the nets' 2x2 window, inside the plane: constants, unrolled */
                    NNF_FN(nnf_window_max_)(xp, W, 2, h0, w0, 0, 2, 0, 2, &best, &k);
                else
                    NNF_FN(nnf_window_max_)(xp, W, PW, h0, w0, i0, i1, j0, j1, &best, &k);
                op[oh * OW + ow] = best;
                ap[oh * OW + ow] = k;
            }
        }
    }
    return NNF_OK;
}

/* Windows are visited in reverse row-major order, so each dx element receives its terms
 * in the order the reference's col2im adds them (ascending window offset): bit-equal. */
int NNF_FN(nnf_maxpool_bwd_)(const T *NNF_RESTRICT dout, const int32_t *NNF_RESTRICT argmax,
                             nnf_index N, nnf_index C, nnf_index H, nnf_index W, nnf_index PH,
                             nnf_index PW, nnf_index stride, nnf_index pad,
                             const uint8_t *NNF_RESTRICT relu_mask, T *NNF_RESTRICT dx,
                             int n_threads)
{
    nnf_index OH, OW;
    if (NNF_FN(nnf_pool_geom_)(N, C, H, W, PH, PW, stride, pad, &OH, &OW)) return NNF_EINVAL;
    const nnf_index planes = N * C;
    const int parallel = n_threads > 1 && planes * (H * W + OH * OW) >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;
    int bad = 0; /* an offset outside [0, PH*PW): NNF_EINVAL (dx is then not meaningful) */

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel) reduction(|:bad)
    for (nnf_index p = 0; p < planes; ++p) {
        const T *dp = dout + p * OH * OW;
        const int32_t *ap = argmax + p * OH * OW;
        T *xp = dx + p * H * W;
        const uint8_t *mp = relu_mask != NULL ? relu_mask + p * H * W : NULL;
        if (PH == 2 && PW == 2 && stride == 2 && pad == 0) {
            /* windows tile the plane without overlap: every dx element gets at most one
             * term, written directly ((T)0 + g, as the reference adds it to a zero); only
             * an odd last row/column lies outside every window and needs zeroing */
            if (H != 2 * OH || W != 2 * OW)
                for (nnf_index k = 0; k < H * W; ++k) xp[k] = (T)0;
            for (nnf_index oh = 0; oh < OH; ++oh) {
                T *r0 = xp + 2 * oh * W, *r1 = r0 + W;
                for (nnf_index ow = 0; ow < OW; ++ow) {
                    const int32_t k = ap[oh * OW + ow];
                    const T g = (T)0 + dp[oh * OW + ow];
                    bad |= (uint32_t)k > 3u;
                    r0[2 * ow] = NNF_FN(nnf_pick_)(k == 0, g, (T)0);
                    r0[2 * ow + 1] = NNF_FN(nnf_pick_)(k == 1, g, (T)0);
                    r1[2 * ow] = NNF_FN(nnf_pick_)(k == 2, g, (T)0);
                    r1[2 * ow + 1] = NNF_FN(nnf_pick_)(k == 3, g, (T)0);
                }
                if (mp != NULL) { /* the two rows are still in L1: mask them now */
                    const uint8_t *m0 = mp + 2 * oh * W;
                    for (nnf_index j = 0; j < 2 * W; ++j) r0[j] = m0[j] ? (T)0 : r0[j];
                }
            }
            continue;
        }
        for (nnf_index k = 0; k < H * W; ++k) xp[k] = (T)0;
        for (nnf_index oh = OH - 1; oh >= 0; --oh) {
            for (nnf_index ow = OW - 1; ow >= 0; --ow) {
                const nnf_index k = ap[oh * OW + ow];
                /* the range checks also keep a corrupted argmax inside its window and dx */
                const nnf_index h = oh * stride - pad + k / PW;
                const nnf_index w = ow * stride - pad + k % PW;
                if (k >= 0 && k < PH * PW && h >= 0 && h < H && w >= 0 && w < W)
                    xp[h * W + w] += dp[oh * OW + ow];
                else if (k < 0 || k >= PH * PW)
                    bad = 1;
            }
        }
        if (mp != NULL)
            for (nnf_index k = 0; k < H * W; ++k) xp[k] = mp[k] ? (T)0 : xp[k];
    }
    return bad ? NNF_EINVAL : NNF_OK;
}

int NNF_FN(nnf_avgpool_fwd_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index H,
                             nnf_index W, nnf_index PH, nnf_index PW, nnf_index stride,
                             nnf_index pad, T *NNF_RESTRICT out, int n_threads)
{
    nnf_index OH, OW;
    if (NNF_FN(nnf_pool_geom_)(N, C, H, W, PH, PW, stride, pad, &OH, &OW)) return NNF_EINVAL;
    const nnf_index planes = N * C;
    const ACC count = (ACC)(PH * PW);
    const int parallel = n_threads > 1 && planes * OH * OW * PH * PW >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index p = 0; p < planes; ++p) {
        const T *xp = x + p * H * W;
        T *op = out + p * OH * OW;
        for (nnf_index oh = 0; oh < OH; ++oh) {
            const nnf_index h0 = oh * stride - pad;
            nnf_index i0, i1;
            NNF_FN(nnf_pool_clip_)(h0, PH, H, &i0, &i1);
            for (nnf_index ow = 0; ow < OW; ++ow) {
                const nnf_index w0 = ow * stride - pad;
                nnf_index j0, j1;
                NNF_FN(nnf_pool_clip_)(w0, PW, W, &j0, &j1);
                ACC sum = 0;
                for (nnf_index i = i0; i < i1; ++i) {
                    const nnf_index base = (h0 + i) * W + w0;
                    for (nnf_index j = j0; j < j1; ++j) sum += (ACC)xp[base + j];
                }
                op[oh * OW + ow] = (T)(sum / count);
            }
        }
    }
    return NNF_OK;
}

/* Same visiting order as nnf_maxpool_bwd_: bit-equal to the reference's col2im. */
int NNF_FN(nnf_avgpool_bwd_)(const T *NNF_RESTRICT dout, nnf_index N, nnf_index C, nnf_index H,
                             nnf_index W, nnf_index PH, nnf_index PW, nnf_index stride,
                             nnf_index pad, T *NNF_RESTRICT dx, int n_threads)
{
    nnf_index OH, OW;
    if (NNF_FN(nnf_pool_geom_)(N, C, H, W, PH, PW, stride, pad, &OH, &OW)) return NNF_EINVAL;
    const nnf_index planes = N * C;
    const T count = (T)(PH * PW);
    const int parallel = n_threads > 1 && planes * (H * W + OH * OW * PH * PW) >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index p = 0; p < planes; ++p) {
        const T *dp = dout + p * OH * OW;
        T *xp = dx + p * H * W;
        for (nnf_index k = 0; k < H * W; ++k) xp[k] = (T)0;
        for (nnf_index oh = OH - 1; oh >= 0; --oh) {
            const nnf_index h0 = oh * stride - pad;
            nnf_index i0, i1;
            NNF_FN(nnf_pool_clip_)(h0, PH, H, &i0, &i1);
            for (nnf_index ow = OW - 1; ow >= 0; --ow) {
                const nnf_index w0 = ow * stride - pad;
                nnf_index j0, j1;
                NNF_FN(nnf_pool_clip_)(w0, PW, W, &j0, &j1);
                const T g = dp[oh * OW + ow] / count; /* the reference's dout / pool_size */
                for (nnf_index i = i0; i < i1; ++i) {
                    const nnf_index base = (h0 + i) * W + w0;
                    for (nnf_index j = j0; j < j1; ++j) xp[base + j] += g;
                }
            }
        }
    }
    return NNF_OK;
}

#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
