/* batchnorm_impl.h - dtype-generic bodies of the batchnorm family (T, SFX, SQRT_T; built once
 * per ISA, see isa.h). Accumulation: every per-channel sum is in T, over n then i in ascending
 * order - the order of NumPy's axis-0 reduction in the reference - so results match it bit for
 * bit, whatever the thread count or the build (a channel never spans two threads; vector lanes
 * run over channels, never along a sum).
 *
 * Two shapes:
 * - I == 1 (per feature, the book's mode on (N, D)): a block of B channels is a strip of B
 *   contiguous values in each of the N rows; every pass is vertical (lanes over channels),
 *   and the passes that follow the first find the strip in cache (B*N values per array).
 * - I > 1 (per channel over (N, H, W)): each channel's sum is one serial chain; NNF_BN_ILV
 *   channels are summed side by side, so that the chains overlap instead of waiting on the
 *   add latency; the element-wise passes vectorise along i. */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(NNF_CAT(name, SFX), NNF_ISA_TAG)

/* Channels per task with I == 1 (a strip of B values per row, B*N per array in L2). */
#define NNF_BN_BLOCK 256
/* Channels whose serial sums run interleaved with I > 1. */
#define NNF_BN_ILV 8

/* ---- I > 1: per-channel sums, NNF_BN_ILV chains at a time --------------------------------- */

/* acc[k] = sum over n, i of the term at [n, c0 + k, i], k < w <= ILV; the term is a
 * (form 0), a*b (form 1), (g[k]*a)*b/q[k] (form 2: batch norm's dstd) or (a/q[k])*b (form 3:
 * dgamma from xc, std and dout, with xn = xc/std formed again). */
NNF_ALWAYS_INLINE void NNF_FN(nnf_bn_chan_sum_)(const T *NNF_RESTRICT a, const T *NNF_RESTRICT b,
                                                const T *NNF_RESTRICT g, const T *NNF_RESTRICT q,
                                                int form, nnf_index N, nnf_index C,
                                                nnf_index I, nnf_index c0, nnf_index w,
                                                T *NNF_RESTRICT acc)
{
#define NNF_BN_TERM(k, i) (form == 0 ? ar[(k) * I + (i)]                                \
                           : form == 1 ? ar[(k) * I + (i)] * br[(k) * I + (i)]          \
                           : form == 2 ? (g[k] * ar[(k) * I + (i)]) * br[(k) * I + (i)] / q[k] \
                           : (ar[(k) * I + (i)] / q[k]) * br[(k) * I + (i)])
    T s[NNF_BN_ILV];
    for (int k = 0; k < NNF_BN_ILV; ++k) s[k] = (T)0;
    for (nnf_index n = 0; n < N; ++n) {
        const T *ar = a + (n * C + c0) * I, *br = b ? b + (n * C + c0) * I : NULL;
        if (w == NNF_BN_ILV) {
            for (nnf_index i = 0; i < I; ++i)
                for (int k = 0; k < NNF_BN_ILV; ++k) s[k] = s[k] + NNF_BN_TERM(k, i);
        } else {
            for (nnf_index k = 0; k < w; ++k)
                for (nnf_index i = 0; i < I; ++i) s[k] = s[k] + NNF_BN_TERM(k, i);
        }
    }
    for (nnf_index k = 0; k < w; ++k) acc[k] = s[k];
#undef NNF_BN_TERM
}

/* ---- forward, training ----------------------------------------------------------------- */

int NNF_FN(nnf_bn_fwd_train_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index I,
                              const T *NNF_RESTRICT gamma, const T *NNF_RESTRICT beta,
                              const T *NNF_RESTRICT rm_in, const T *NNF_RESTRICT rv_in,
                              double momentum, T *NNF_RESTRICT out, T *NNF_RESTRICT xc,
                              T *NNF_RESTRICT xn, T *NNF_RESTRICT std, T *NNF_RESTRICT rm_out,
                              T *NNF_RESTRICT rv_out, int n_threads)
{
    if (N < 1 || C < 0 || I < 1) return NNF_EINVAL;
    const nnf_index B = I == 1 ? NNF_BN_BLOCK : NNF_BN_ILV;
    const nnf_index blocks = (C + B - 1) / B;
    const T M = (T)(N * I), eps = (T)NNF_BN_EPS;
    const T mom = (T)momentum, omm = (T)(1.0 - momentum);
    const int parallel = n_threads > 1 && blocks > 1 && N * C * I >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index blk = 0; blk < blocks; ++blk) {
        const nnf_index c0 = blk * B, w = c0 + B < C ? B : C - c0;
        T mu[NNF_BN_BLOCK], var[NNF_BN_BLOCK];
        if (I == 1) {
            /* mu = sum(x)/M; then xc = x - mu (kept) with var = sum(xc*xc) in the same pass */
            for (nnf_index k = 0; k < w; ++k) mu[k] = (T)0;
            for (nnf_index n = 0; n < N; ++n) {
                const T *xr = x + n * C + c0;
                for (nnf_index k = 0; k < w; ++k) mu[k] = mu[k] + xr[k];
            }
            for (nnf_index k = 0; k < w; ++k) { mu[k] = mu[k] / M; var[k] = (T)0; }
            for (nnf_index n = 0; n < N; ++n) {
                const T *xr = x + n * C + c0;
                T *cr = xc + n * C + c0;
                for (nnf_index k = 0; k < w; ++k) {
                    const T v = xr[k] - mu[k];
                    cr[k] = v;
                    var[k] = var[k] + v * v;
                }
            }
        } else {
            NNF_FN(nnf_bn_chan_sum_)(x, NULL, NULL, NULL, 0, N, C, I, c0, w, mu);
            for (nnf_index k = 0; k < w; ++k) mu[k] = mu[k] / M;
            for (nnf_index n = 0; n < N; ++n)
                for (nnf_index k = 0; k < w; ++k) {
                    const nnf_index base = (n * C + c0 + k) * I;
                    const T m = mu[k];
                    for (nnf_index i = 0; i < I; ++i) xc[base + i] = x[base + i] - m;
                }
            NNF_FN(nnf_bn_chan_sum_)(xc, xc, NULL, NULL, 1, N, C, I, c0, w, var);
        }
        for (nnf_index k = 0; k < w; ++k) {
            const nnf_index c = c0 + k;
            const T v = var[k] / M;
            std[c] = SQRT_T(v + eps);
            rm_out[c] = mom * rm_in[c] + omm * mu[k];
            rv_out[c] = mom * rv_in[c] + omm * v;
        }
        /* xn = xc / std; out = gamma*xn + beta */
        if (I == 1) {
            const T *sd = std + c0, *g = gamma + c0, *b = beta + c0;
            for (nnf_index n = 0; n < N; ++n) {
                const T *cr = xc + n * C + c0;
                T *nr = xn ? xn + n * C + c0 : NULL, *orow = out + n * C + c0;
                if (xn) {
                    for (nnf_index k = 0; k < w; ++k) {
                        const T v = cr[k] / sd[k];
                        nr[k] = v;
                        orow[k] = g[k] * v + b[k];
                    }
                } else {
                    for (nnf_index k = 0; k < w; ++k) orow[k] = g[k] * (cr[k] / sd[k]) + b[k];
                }
            }
        } else {
            for (nnf_index n = 0; n < N; ++n)
                for (nnf_index c = c0; c < c0 + w; ++c) {
                    const nnf_index base = (n * C + c) * I;
                    const T s = std[c], g = gamma[c], b = beta[c];
                    if (xn) {
                        for (nnf_index i = 0; i < I; ++i) {
                            const T v = xc[base + i] / s;
                            xn[base + i] = v;
                            out[base + i] = g * v + b;
                        }
                    } else {
                        for (nnf_index i = 0; i < I; ++i) out[base + i] = g * (xc[base + i] / s) + b;
                    }
                }
        }
    }
    return NNF_OK;
}

/* ---- forward, test --------------------------------------------------------------------- */

int NNF_FN(nnf_bn_fwd_test_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index I,
                             const T *NNF_RESTRICT gamma, const T *NNF_RESTRICT beta,
                             const T *NNF_RESTRICT rm, const T *NNF_RESTRICT rv,
                             T *NNF_RESTRICT out, int n_threads)
{
    if (N < 0 || C < 0 || I < 1) return NNF_EINVAL;
    const T eps = (T)NNF_BN_EPS;
    const int parallel = n_threads > 1 && N > 1 && N * C * I >= 4 * NNF_PARALLEL_MIN_WORK;
    (void)parallel;
    if (I == 1) {
        /* the channel parameters vary along a row: sqrt(rv + eps) once per channel would need
         * a buffer; recomputing it per row is the same value (sqrt is exact) */
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
        for (nnf_index n = 0; n < N; ++n) {
            const T *xr = x + n * C;
            T *orow = out + n * C;
            for (nnf_index c = 0; c < C; ++c)
                orow[c] = gamma[c] * ((xr[c] - rm[c]) / SQRT_T(rv[c] + eps)) + beta[c];
        }
        return NNF_OK;
    }
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index n = 0; n < N; ++n)
        for (nnf_index c = 0; c < C; ++c) {
            const nnf_index base = (n * C + c) * I;
            const T s = SQRT_T(rv[c] + eps), m = rm[c], g = gamma[c], b = beta[c];
            for (nnf_index i = 0; i < I; ++i) out[base + i] = g * ((x[base + i] - m) / s) + b;
        }
    return NNF_OK;
}

/* ---- backward -------------------------------------------------------------------------- */

int NNF_FN(nnf_bn_bwd_)(const T *NNF_RESTRICT dout, const T *NNF_RESTRICT xc,
                        const T *NNF_RESTRICT xn, const T *NNF_RESTRICT std,
                        const T *NNF_RESTRICT gamma, nnf_index N, nnf_index C, nnf_index I,
                        T *NNF_RESTRICT dx, T *NNF_RESTRICT dgamma, T *NNF_RESTRICT dbeta,
                        int n_threads)
{
    if (N < 1 || C < 0 || I < 1) return NNF_EINVAL;
    const nnf_index B = I == 1 ? NNF_BN_BLOCK : NNF_BN_ILV;
    const nnf_index blocks = (C + B - 1) / B;
    const nnf_index Mi = N * I;
    const T M = (T)Mi, two_over_m = (T)(2.0 / (double)Mi), half = (T)0.5;
    const int parallel = n_threads > 1 && blocks > 1 && N * C * I >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index blk = 0; blk < blocks; ++blk) {
        const nnf_index c0 = blk * B, w = c0 + B < C ? B : C - c0;
        T dstd[NNF_BN_BLOCK], dvar[NNF_BN_BLOCK], dmu[NNF_BN_BLOCK], ss[NNF_BN_BLOCK];
        const T *g = gamma + c0, *sd = std + c0;
        T *dg = dgamma + c0, *dbt = dbeta + c0;
        for (nnf_index k = 0; k < w; ++k) ss[k] = sd[k] * sd[k];
        if (I == 1) {
            /* dbeta = sum(dout), dgamma = sum(xn*dout), dstd = -sum((gamma*dout)*xc/(std*std)):
             * three sums, one pass */
            for (nnf_index k = 0; k < w; ++k) { dbt[k] = (T)0; dg[k] = (T)0; dstd[k] = (T)0; }
            for (nnf_index n = 0; n < N; ++n) {
                const T *dr = dout + n * C + c0, *cr = xc + n * C + c0;
                if (xn) {
                    const T *nr = xn + n * C + c0;
                    for (nnf_index k = 0; k < w; ++k) {
                        const T d = dr[k];
                        dbt[k] = dbt[k] + d;
                        dg[k] = dg[k] + nr[k] * d;
                        dstd[k] = dstd[k] + (g[k] * d) * cr[k] / ss[k];
                    }
                } else { /* xn = xc/std again: the forward's values, bit for bit */
                    for (nnf_index k = 0; k < w; ++k) {
                        const T d = dr[k];
                        dbt[k] = dbt[k] + d;
                        dg[k] = dg[k] + (cr[k] / sd[k]) * d;
                        dstd[k] = dstd[k] + (g[k] * d) * cr[k] / ss[k];
                    }
                }
            }
        } else {
            NNF_FN(nnf_bn_chan_sum_)(dout, NULL, NULL, NULL, 0, N, C, I, c0, w, dbt);
            if (xn)
                NNF_FN(nnf_bn_chan_sum_)(xn, dout, NULL, NULL, 1, N, C, I, c0, w, dg);
            else
                NNF_FN(nnf_bn_chan_sum_)(xc, dout, NULL, sd, 3, N, C, I, c0, w, dg);
            NNF_FN(nnf_bn_chan_sum_)(dout, xc, g, ss, 2, N, C, I, c0, w, dstd);
        }
        for (nnf_index k = 0; k < w; ++k) {
            dvar[k] = half * -dstd[k] / sd[k];
            dmu[k] = (T)0;
        }
        /* dxc = (gamma*dout)/std + ((2/M)*xc)*dvar, stored in dx; dmu = sum(dxc) */
        if (I == 1) {
            for (nnf_index n = 0; n < N; ++n) {
                const T *dr = dout + n * C + c0, *cr = xc + n * C + c0;
                T *xr = dx + n * C + c0;
                for (nnf_index k = 0; k < w; ++k) {
                    const T v = (g[k] * dr[k]) / sd[k] + (two_over_m * cr[k]) * dvar[k];
                    xr[k] = v;
                    dmu[k] = dmu[k] + v;
                }
            }
        } else {
            for (nnf_index n = 0; n < N; ++n)
                for (nnf_index k = 0; k < w; ++k) {
                    const nnf_index base = (n * C + c0 + k) * I;
                    const T gk = g[k], s = sd[k], dv = dvar[k];
                    T *dxr = dx + base;
                    const T *dr = dout + base, *cr = xc + base;
                    for (nnf_index i = 0; i < I; ++i)
                        dxr[i] = (gk * dr[i]) / s + (two_over_m * cr[i]) * dv;
                }
            NNF_FN(nnf_bn_chan_sum_)(dx, NULL, NULL, NULL, 0, N, C, I, c0, w, dmu);
        }
        for (nnf_index k = 0; k < w; ++k) dmu[k] = dmu[k] / M;
        for (nnf_index n = 0; n < N; ++n) {
            if (I == 1) {
                T *xr = dx + n * C + c0;
                for (nnf_index k = 0; k < w; ++k) xr[k] = xr[k] - dmu[k];
            } else {
                for (nnf_index k = 0; k < w; ++k) {
                    const nnf_index base = (n * C + c0 + k) * I;
                    const T d = dmu[k];
                    for (nnf_index i = 0; i < I; ++i) dx[base + i] = dx[base + i] - d;
                }
            }
        }
    }
    return NNF_OK;
}

#undef NNF_BN_BLOCK
#undef NNF_BN_ILV
#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
