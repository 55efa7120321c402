/* bconv_impl.h - the body of bconv.h's kernels for one (type, instruction set), included by
 * bconv_base.c / bconv_avx2.c / bconv_avx512.c (through bconv_build.h) with T, SFX
 * (f32/f64), ISA, VBYTES (vector bytes), MAXACC (accumulator vectors a tile may hold),
 * FVMAX (channel vectors per tile, <= 4) and BC_MADD(acc, b, x) (acc += b * x, fused:
 * one rounding).
 *
 * Layouts: packed weights wpk, per group of FVg channel vectors, [k][FVg][VL] with
 * k = (c, i, j); a padded image xpad[c][Hp][Wp]; the forward's per-image output buffer
 * obuf[m][Fpad] and the filter gradient's transposed dout dT[m][Fpad], m = oh*OW + ow,
 * channels past F zero. Every element is a serial sum in a fixed order whatever VL,
 * tile shape and thread count are (and the FMA is the same everywhere): the builds agree
 * bit for bit. */
#include <stdint.h>
#include <string.h>

#include "sum.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define BC_CAT3_(a, b, c) a##_##b##_##c
#define BC_CAT3(a, b, c) BC_CAT3_(a, b, c)
#define BC_FN(name) BC_CAT3(name, SFX, ISA)
#define BC_SUM_(a) nnf_sum_##a
#define BC_SUM_X(a) BC_SUM_(a)
#define BC_SUM BC_SUM_X(SFX)
#define BC_DB_(a) nnf_db_from_partials_##a
#define BC_DB_X(a) BC_DB_(a)
#define BC_DB BC_DB_X(SFX)

#define VL ((nnf_index)(VBYTES / sizeof(T)))
typedef T BC_FN(bc_vec) __attribute__((vector_size(VBYTES)));
#define VEC BC_FN(bc_vec)
/* the integer vector of a comparison's result (lanes of T's width), and VL bytes */
typedef IT BC_FN(bc_ivec) __attribute__((vector_size(VBYTES)));
#define IVEC BC_FN(bc_ivec)
typedef int8_t BC_FN(bc_bvec) __attribute__((vector_size(VBYTES / sizeof(T))));
#define BVEC BC_FN(bc_bvec)

/* The tile shapes: FV (1..4) channel vectors x up to PMAX(FV) positions (forward) or taps
 * (filter gradient), so that FV*PMAX <= MAXACC. */
#define BC_PMAX(fv) (MAXACC / (fv) < 24 ? MAXACC / (fv) : 24)
#define BC_TMAX(fv) (MAXACC / (fv) < 12 ? MAXACC / (fv) : 12)
#if defined(__GNUC__) && !defined(__clang__)
#define BC_UNROLL _Pragma("GCC unroll 32")
#else
#define BC_UNROLL
#endif

static inline VEC BC_FN(bc_load)(const T *p)
{
    VEC v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void BC_FN(bc_store)(T *p, VEC v) { memcpy(p, &v, sizeof v); }

/* r[i] (row i of a VL x VL block) becomes column i: log2(VL) rounds, each pairing rows i
 * and i + VL/2 and interleaving their low and high halves into rows 2i and 2i + 1. */
NNF_ALWAYS_INLINE void BC_FN(bc_transpose)(VEC *r)
{
#if defined(__GNUC__) && !defined(__clang__)
    IVEC lo, hi;
    for (nnf_index l = 0; l < VL; ++l) {
        lo[l] = (IT)(l / 2 + (l % 2) * VL);
        hi[l] = (IT)(l / 2 + (l % 2) * VL + VL / 2);
    }
    for (nnf_index half = VL / 2; half >= 1; half /= 2) {
        VEC t[VL];
        BC_UNROLL for (nnf_index i = 0; i < VL / 2; ++i) {
            t[2 * i] = __builtin_shuffle(r[i], r[i + VL / 2], lo);
            t[2 * i + 1] = __builtin_shuffle(r[i], r[i + VL / 2], hi);
        }
        BC_UNROLL for (nnf_index i = 0; i < VL; ++i) r[i] = t[i];
    }
#else
    /* clang has __builtin_shufflevector (constant indices) but not GCC's __builtin_shuffle
     * (a vector of indices): transpose through memory instead (the same values) */
    T m[VL][VL];
    for (nnf_index i = 0; i < VL; ++i) memcpy(m[i], &r[i], sizeof(VEC));
    for (nnf_index i = 0; i < VL; ++i)
        for (nnf_index l = 0; l < VL; ++l) r[i][l] = m[l][i];
#endif
}

/* dst[c*dld + r] = src[r*sld + c] for r < rows, c < cols (a tile of at most VL x VL) */
NNF_ALWAYS_INLINE void BC_FN(bc_tile_copy)(const T *NNF_RESTRICT src, nnf_index sld,
                                           T *NNF_RESTRICT dst, nnf_index dld,
                                           nnf_index rows, nnf_index cols)
{
    if (rows == VL && cols == VL) {
        VEC r[VL];
        BC_UNROLL for (nnf_index i = 0; i < VL; ++i) r[i] = BC_FN(bc_load)(src + i * sld);
        BC_FN(bc_transpose)(r);
        BC_UNROLL for (nnf_index i = 0; i < VL; ++i) BC_FN(bc_store)(dst + i * dld, r[i]);
        return;
    }
    for (nnf_index c = 0; c < cols; ++c)
        for (nnf_index i = 0; i < rows; ++i) dst[c * dld + i] = src[i * sld + c];
}

/* The first 64-byte boundary at or after p. */
static inline char *BC_FN(bc_align)(void *p)
{
    const uintptr_t mis = (uintptr_t)p % 64;
    return mis ? (char *)p + (64 - mis) : (char *)p;
}

/* xp[c] = x[c] framed by ph rows and pw columns of zeros (plain loops: a memcpy call per
 * short row cost more than the copy). */
static void BC_FN(bc_pad)(const T *NNF_RESTRICT x, nnf_index C, nnf_index H, nnf_index W,
                          nnf_index ph, nnf_index pw, T *NNF_RESTRICT xp)
{
    const nnf_index Hp = H + 2 * ph, Wp = W + 2 * pw;
    for (nnf_index c = 0; c < C; ++c) {
        T *plane = xp + c * Hp * Wp;
        const T *src = x + c * H * W;
        for (nnf_index k = 0; k < ph * Wp + pw; ++k) plane[k] = (T)0;
        for (nnf_index h = 0; h < H; ++h) {
            T *row = plane + (h + ph) * Wp + pw;
            for (nnf_index k = 0; k < W; ++k) row[k] = src[h * W + k];
            /* this row's right frame and the next row's left one */
            for (nnf_index k = W; k < W + 2 * pw; ++k) row[k] = (T)0;
        }
        for (nnf_index k = (H + ph) * Wp + pw; k < Hp * Wp; ++k) plane[k] = (T)0;
    }
}

/* The channel groups: nfb = ceil(F / VL) vectors in groups of fv (the last one smaller). */
static inline int BC_FN(bc_fv)(nnf_index nfb)
{
    /* the fewest groups of at most FVMAX, of even sizes */
    const nnf_index groups = (nfb + FVMAX - 1) / FVMAX;
    return (int)((nfb + groups - 1) / groups);
}

/* wpk for channel groups of fv vectors: group g (vectors g*fv ...) at offset g*fv*VL*K,
 * laid out [k][FVg][VL]. src(f, k) = w[f*K + k]. */
static void BC_FN(bc_pack)(const T *NNF_RESTRICT w, nnf_index F, nnf_index K, int fv,
                           T *NNF_RESTRICT wpk)
{
    const nnf_index nfb = (F + VL - 1) / VL;
    for (nnf_index b0 = 0; b0 < nfb; b0 += fv) {
        const nnf_index gv = nfb - b0 < fv ? nfb - b0 : fv;
        T *g = wpk + b0 * VL * K;
        for (nnf_index k = 0; k < K; ++k)
            for (nnf_index l = 0; l < gv * VL; ++l) {
                const nnf_index f = b0 * VL + l;
                g[k * gv * VL + l] = f < F ? w[f * K + k] : (T)0;
            }
    }
}

/* obuf[p*Fpad + v*VL ...] = the sums of PN positions (one output row's ow0 .. ow0 + PN - 1,
 * whose first tap sits at xs in the padded image) for the FVN channel vectors of wg. */
NNF_ALWAYS_INLINE void BC_FN(bc_fwd_tile)(const T *NNF_RESTRICT xs, const nnf_index SW,
                                          const T *NNF_RESTRICT wg, const int FVN,
                                          nnf_index C, nnf_index KH, nnf_index KW,
                                          nnf_index plane, nnf_index Wp, const int PN,
                                          T *NNF_RESTRICT ob, nnf_index Fpad)
{
    VEC acc[4][BC_PMAX(1)];
    BC_UNROLL for (int v = 0; v < FVN; ++v)
        BC_UNROLL for (int p = 0; p < PN; ++p) acc[v][p] = (VEC){0};
    const T *wk = wg;
    for (nnf_index c = 0; c < C; ++c) {
        for (nnf_index i = 0; i < KH; ++i) {
            const T *xr = xs + c * plane + i * Wp;
            for (nnf_index j = 0; j < KW; ++j, wk += FVN * VL) {
                VEC b[4];
                BC_UNROLL for (int v = 0; v < FVN; ++v) b[v] = BC_FN(bc_load)(wk + v * VL);
                BC_UNROLL for (int p = 0; p < PN; ++p) {
                    const T xv = xr[j + p * SW];
                    BC_UNROLL for (int v = 0; v < FVN; ++v) BC_MADD(acc[v][p], b[v], xv);
                }
            }
        }
    }
    BC_UNROLL for (int p = 0; p < PN; ++p)
        BC_UNROLL for (int v = 0; v < FVN; ++v) BC_FN(bc_store)(ob + p * Fpad + v * VL, acc[v][p]);
}

/* One output row of one channel group: tiles of pn positions, then the rest. */
NNF_ALWAYS_INLINE void BC_FN(bc_fwd_row)(const T *xrow, const nnf_index SW, const T *wg,
                                         const int FVN, nnf_index C, nnf_index KH,
                                         nnf_index KW, nnf_index plane, nnf_index Wp,
                                         nnf_index OW, nnf_index pn, T *ob, nnf_index Fpad)
{
    for (nnf_index ow0 = 0; ow0 < OW; ow0 += pn) {
        const nnf_index n = OW - ow0 < pn ? OW - ow0 : pn;
        const T *xs = xrow + ow0 * SW;
        T *o = ob + ow0 * Fpad;
        switch (n) {
#define BC_P(k) case k: if (k <= BC_PMAX(FVN)) BC_FN(bc_fwd_tile)(xs, SW, wg, FVN, C, KH, KW, plane, Wp, k, o, Fpad); break;
        BC_P(1) BC_P(2) BC_P(3) BC_P(4) BC_P(5) BC_P(6)
#if MAXACC >= 12
        BC_P(7) BC_P(8) BC_P(9) BC_P(10) BC_P(11) BC_P(12)
#endif
#if MAXACC >= 24
        BC_P(13) BC_P(14) BC_P(15) BC_P(16) BC_P(17) BC_P(18) BC_P(19) BC_P(20)
        BC_P(21) BC_P(22) BC_P(23) BC_P(24)
#endif
#undef BC_P
        default: break;
        }
    }
}

/* Positions per tile for a row of OW with fv channel vectors: the fewest tiles the
 * accumulators allow, of even sizes. */
static inline nnf_index BC_FN(bc_pn)(nnf_index OW, int fv)
{
    const nnf_index pmax = BC_PMAX(fv);
    const nnf_index tiles = (OW + pmax - 1) / pmax;
    return (OW + tiles - 1) / tiles;
}

/* One image: every output row and channel group into obuf, then obuf transposed into out
 * (F, OH*OW) with the bias and the ReLU. */
static void BC_FN(bc_fwd_image)(const T *NNF_RESTRICT xp, nnf_index C, nnf_index Hp,
                                nnf_index Wp, const T *NNF_RESTRICT wpk, nnf_index F,
                                nnf_index KH, nnf_index KW, nnf_index sh, nnf_index sw,
                                nnf_index OH, nnf_index OW, int fv, const T *bias,
                                T *NNF_RESTRICT obuf, T *NNF_RESTRICT out,
                                uint8_t *NNF_RESTRICT mask)
{
    const nnf_index K = C * KH * KW, nfb = (F + VL - 1) / VL, Fpad = nfb * VL;
    const nnf_index plane = Hp * Wp, M = OH * OW;
    for (nnf_index b0 = 0; b0 < nfb; b0 += fv) {
        const int gv = (int)(nfb - b0 < fv ? nfb - b0 : fv);
        const T *wg = wpk + b0 * VL * K;
        const nnf_index pn = BC_FN(bc_pn)(OW, gv);
        for (nnf_index oh = 0; oh < OH; ++oh) {
            const T *xrow = xp + oh * sh * Wp;
            T *ob = obuf + oh * OW * Fpad + b0 * VL;
#define BC_ROW(S, G) BC_FN(bc_fwd_row)(xrow, S, wg, G, C, KH, KW, plane, Wp, OW, pn, ob, Fpad)
#define BC_ROWS(G) if (sw == 1) BC_ROW(1, G); else BC_ROW(sw, G); break;
            switch (gv) {
            case 1: BC_ROWS(1)
            case 2: BC_ROWS(2)
            case 3: BC_ROWS(3)
            default: BC_ROWS(4)
            }
#undef BC_ROWS
#undef BC_ROW
        }
    }
    /* the epilogue, per VL x VL block transposed in registers: bias, then the ReLU as
     * Relu.forward (mask = v <= 0, where v is set to +0; NaN compares false and passes) */
    const VEC zero = (VEC){0};
    for (nnf_index f0 = 0; f0 < F; f0 += VL) {
        const nnf_index fn = F - f0 < VL ? F - f0 : VL;
        for (nnf_index m0 = 0; m0 < M; m0 += VL) {
            const nnf_index mn = M - m0 < VL ? M - m0 : VL;
            if (fn == VL && mn == VL) {
                VEC r[VL];
                BC_UNROLL for (nnf_index i = 0; i < VL; ++i)
                    r[i] = BC_FN(bc_load)(obuf + (m0 + i) * Fpad + f0);
                BC_FN(bc_transpose)(r);
                BC_UNROLL for (nnf_index i = 0; i < VL; ++i) {
                    VEC z = r[i];
                    if (bias != NULL) z += bias[f0 + i];
                    if (mask != NULL) {
                        const IVEC m = z <= zero; /* all ones where v <= 0 */
                        z = (VEC)((IVEC)z & ~m);
                        const BVEC mb = __builtin_convertvector(-m, BVEC); /* 1 where set */
                        memcpy(mask + (f0 + i) * M + m0, &mb, sizeof mb);
                    }
                    BC_FN(bc_store)(out + (f0 + i) * M + m0, z);
                }
                continue;
            }
            for (nnf_index f = f0; f < f0 + fn; ++f)
                for (nnf_index m = m0; m < m0 + mn; ++m) {
                    T v = obuf[m * Fpad + f];
                    if (bias != NULL) v += bias[f];
                    if (mask != NULL) {
                        const int neg = v <= (T)0;
                        mask[f * M + m] = (uint8_t)neg;
                        if (neg) v = (T)0;
                    }
                    out[f * M + m] = v;
                }
        }
    }
}

int BC_FN(nnf_bconv_fwd)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index H,
                         nnf_index W, const T *NNF_RESTRICT w, nnf_index F, nnf_index KH,
                         nnf_index KW, nnf_index sh, nnf_index sw, nnf_index ph, nnf_index pw,
                         const T *NNF_RESTRICT bias, T *NNF_RESTRICT out,
                         uint8_t *NNF_RESTRICT relu_mask, T *NNF_RESTRICT scratch,
                         int n_threads)
{
    if (nnf_bconv_fwd_scratch(C, H, W, F, KH, KW, sh, sw, ph, pw, 1, (int)sizeof(T)) < 0)
        return NNF_EINVAL;
    const nnf_index Hp = H + 2 * ph, Wp = W + 2 * pw;
    const nnf_index OH = (Hp - KH) / sh + 1, OW = (Wp - KW) / sw + 1, M = OH * OW;
    const nnf_index K = C * KH * KW, nfb = (F + VL - 1) / VL, Fpad = nfb * VL;
    /* scratch: the packed weights, then per thread a padded image and an output buffer */
    const nnf_index per_x = nnf_bconv_elems(C * Hp * Wp, sizeof(T));
    const nnf_index per_o = nnf_bconv_elems(M * Fpad, sizeof(T));
    const int fv = BC_FN(bc_fv)(nfb);
    T *wpk = (T *)BC_FN(bc_align)(scratch);
    T *thread_base = wpk + nnf_bconv_elems(Fpad * K, sizeof(T));
    BC_FN(bc_pack)(w, F, K, fv, wpk);
    const int parallel = n_threads > 1 && N > 1 &&
                         (double)N * M * K * F >= (double)NNF_PARALLEL_MIN_WORK;
    (void)parallel;
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index n = 0; n < N; ++n) {
#ifdef _OPENMP
        const nnf_index tid = omp_get_thread_num();
#else
        const nnf_index tid = 0;
#endif
        T *xp = thread_base + tid * (per_x + per_o);
        T *obuf = xp + per_x;
        BC_FN(bc_pad)(x + n * C * H * W, C, H, W, ph, pw, xp);
        BC_FN(bc_fwd_image)(xp, C, Hp, Wp, wpk, F, KH, KW, sh, sw, OH, OW, fv, bias, obuf,
                            out + n * F * M, relu_mask != NULL ? relu_mask + n * F * M : NULL);
    }
    return NNF_OK;
}

/* acc[t][v] = sum over the group's positions (images g < gn, then m in order) of
 * dT[m][v*VL ...] * xpad[pos(m) + off[t]] for the TKN taps at off[] and the FVN channel
 * vectors at dg; then added (in double) to dwacc[(t)*Fpad + v*VL ...]. */
NNF_ALWAYS_INLINE void BC_FN(bc_dw_tile)(const T *NNF_RESTRICT xg, nnf_index xstride,
                                         const T *NNF_RESTRICT dg, nnf_index dstride,
                                         nnf_index gn, nnf_index OH, nnf_index OW,
                                         nnf_index sh, const nnf_index SW, nnf_index Wp,
                                         nnf_index Fpad, const nnf_index *NNF_RESTRICT offs,
                                         const int TKN, const int FVN,
                                         double *NNF_RESTRICT dwacc)
{
    VEC acc[BC_TMAX(1)][4];
    nnf_index o[BC_TMAX(1)];
    BC_UNROLL for (int t = 0; t < TKN; ++t) {
        o[t] = offs[t];
        BC_UNROLL for (int v = 0; v < FVN; ++v) acc[t][v] = (VEC){0};
    }
    for (nnf_index g = 0; g < gn; ++g) {
        for (nnf_index oh = 0; oh < OH; ++oh) {
            const T *xr = xg + g * xstride + oh * sh * Wp;
            const T *dr = dg + g * dstride + oh * OW * Fpad;
            for (nnf_index ow = 0; ow < OW; ++ow) {
                VEC d[4];
                BC_UNROLL for (int v = 0; v < FVN; ++v)
                    d[v] = BC_FN(bc_load)(dr + ow * Fpad + v * VL);
                const T *xq = xr + ow * SW;
                BC_UNROLL for (int t = 0; t < TKN; ++t) {
                    const T xv = xq[o[t]];
                    BC_UNROLL for (int v = 0; v < FVN; ++v) BC_MADD(acc[t][v], d[v], xv);
                }
            }
        }
    }
    BC_UNROLL for (int t = 0; t < TKN; ++t)
        BC_UNROLL for (int v = 0; v < FVN; ++v)
            for (nnf_index l = 0; l < VL; ++l)
                dwacc[t * Fpad + v * VL + l] += (double)acc[t][v][l];
}

NNF_ALWAYS_INLINE void BC_FN(bc_dw_taps)(const T *xg, nnf_index xstride, const T *dg,
                                         nnf_index dstride, nnf_index gn, nnf_index OH,
                                         nnf_index OW, nnf_index sh, nnf_index sw,
                                         nnf_index Wp, nnf_index Fpad, const nnf_index *offs,
                                         const int TKN, const int FVN, double *dwacc)
{
    if (sw == 1)
        BC_FN(bc_dw_tile)(xg, xstride, dg, dstride, gn, OH, OW, sh, 1, Wp, Fpad, offs, TKN,
                          FVN, dwacc);
    else
        BC_FN(bc_dw_tile)(xg, xstride, dg, dstride, gn, OH, OW, sh, sw, Wp, Fpad, offs, TKN,
                          FVN, dwacc);
}

/* The tap block sizes: K taps in blocks of at most tmax, of even sizes. */
static inline nnf_index BC_FN(bc_tk)(nnf_index K, int fv)
{
    const nnf_index tmax = BC_TMAX(fv);
    const nnf_index blocks = (K + tmax - 1) / tmax;
    return (K + blocks - 1) / blocks;
}

int BC_FN(nnf_bconv_dw)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index H,
                        nnf_index W, const T *NNF_RESTRICT dout, nnf_index F, nnf_index KH,
                        nnf_index KW, nnf_index sh, nnf_index sw, nnf_index ph, nnf_index pw,
                        T *NNF_RESTRICT dw, T *NNF_RESTRICT db, T *NNF_RESTRICT scratch,
                        int n_threads)
{
    if (N < 1 ||
        nnf_bconv_dw_scratch(N, C, H, W, F, KH, KW, sh, sw, ph, pw, 1, (int)sizeof(T)) < 0)
        return NNF_EINVAL;
    const nnf_index Hp = H + 2 * ph, Wp = W + 2 * pw, plane = Hp * Wp;
    const nnf_index OH = (Hp - KH) / sh + 1, OW = (Wp - KW) / sw + 1, M = OH * OW;
    const nnf_index KK = KH * KW, K = C * KK, nfb = (F + VL - 1) / VL, Fpad = nfb * VL;
    const nnf_index G = nnf_bconv_group(N, C, H, W, F, KH, KW, sh, sw, ph, pw, (int)sizeof(T));
    const nnf_index xstride = nnf_bconv_elems(C * plane, sizeof(T));
    const nnf_index dstride = nnf_bconv_elems(M * Fpad, sizeof(T));
    const int fv = BC_FN(bc_fv)(nfb);
    const nnf_index ngroups = (nfb + fv - 1) / fv;
    const nnf_index tk = BC_FN(bc_tk)(K, fv);
    const nnf_index nblocks = (K + tk - 1) / tk, ntiles = ngroups * nblocks;
    /* scratch: dwacc (K*Fpad doubles), db's per-image sums (N*F doubles), the tap offsets
     * (K), then every image padded and every dout transposed */
    double *dwacc = (double *)BC_FN(bc_align)(scratch);
    double *dbpart = dwacc + nnf_bconv_elems(K * Fpad, sizeof(double));
    nnf_index *offs = (nnf_index *)(dbpart + nnf_bconv_elems(N * F, sizeof(double)));
    T *xg = (T *)(offs + nnf_bconv_elems(K, sizeof(nnf_index)));
    T *dg = xg + N * xstride;
    for (nnf_index c = 0, k = 0; c < C; ++c)
        for (nnf_index i = 0; i < KH; ++i)
            for (nnf_index j = 0; j < KW; ++j) offs[k++] = c * plane + i * Wp + j;
    memset(dwacc, 0, sizeof(double) * (size_t)(K * Fpad));
    const int parallel = n_threads > 1 &&
                         (double)N * M * K * F >= (double)NNF_PARALLEL_MIN_WORK;
    (void)parallel;

    /* One parallel region, one barrier (a barrier under OMP_WAIT_POLICY=PASSIVE costs a
     * thread wake-up): every image padded and its dout transposed first, then each thread
     * walks the groups with its own fixed share of the tiles. */
#pragma omp parallel num_threads(n_threads) if(parallel)
    {
#pragma omp for schedule(static)
        for (nnf_index n = 0; n < N; ++n) {
            BC_FN(bc_pad)(x + n * C * H * W, C, H, W, ph, pw, xg + n * xstride);
            const T *src = dout + n * F * M;
            T *d = dg + n * dstride;
            for (nnf_index m0 = 0; m0 < M; m0 += VL) {
                const nnf_index mn = M - m0 < VL ? M - m0 : VL;
                for (nnf_index f0 = 0; f0 < F; f0 += VL)
                    BC_FN(bc_tile_copy)(src + f0 * M + m0, M, d + m0 * Fpad + f0, Fpad,
                                        F - f0 < VL ? F - f0 : VL, mn);
                for (nnf_index m = m0; m < m0 + mn; ++m)
                    for (nnf_index f = F; f < Fpad; ++f) d[m * Fpad + f] = (T)0;
            }
            if (db != NULL)
                for (nnf_index f = 0; f < F; ++f) dbpart[n * F + f] = BC_SUM(src + f * M, M);
        }
        /* (the barrier at the end of the loop above: every image is ready) */
#ifdef _OPENMP
        const nnf_index tid = omp_get_thread_num(), nth = omp_get_num_threads();
#else
        const nnf_index tid = 0, nth = 1;
#endif
        const nnf_index t_lo = ntiles * tid / nth, t_hi = ntiles * (tid + 1) / nth;
        for (nnf_index n0 = 0; n0 < N; n0 += G) {
            const nnf_index gn = N - n0 < G ? N - n0 : G;
            const T *xgn = xg + n0 * xstride, *dgn = dg + n0 * dstride;
            for (nnf_index tile = t_lo; tile < t_hi; ++tile) {
                const nnf_index gi = tile / nblocks, bi = tile % nblocks;
                const nnf_index b0 = gi * fv;
                const int gv = (int)(nfb - b0 < fv ? nfb - b0 : fv);
                const nnf_index k0 = bi * tk;
                const int tn = (int)(K - k0 < tk ? K - k0 : tk);
                const T *dgv = dgn + b0 * VL;
                double *acc = dwacc + k0 * Fpad + b0 * VL;
#define BC_T(k, G) case k: if (k <= BC_TMAX(G)) BC_FN(bc_dw_taps)(xgn, xstride, dgv, dstride, gn, OH, OW, sh, sw, Wp, Fpad, offs + k0, k, G, acc); break;
#define BC_TAPS(G)                                                                     \
    switch (tn) {                                                                      \
    BC_T(1, G) BC_T(2, G) BC_T(3, G) BC_T(4, G) BC_T(5, G) BC_T(6, G)                  \
    BC_T(7, G) BC_T(8, G) BC_T(9, G) BC_T(10, G) BC_T(11, G) BC_T(12, G)               \
    default: break;                                                                    \
    }
                switch (gv) {
                case 1: BC_TAPS(1) break;
                case 2: BC_TAPS(2) break;
                case 3: BC_TAPS(3) break;
                default: BC_TAPS(4) break;
                }
#undef BC_TAPS
#undef BC_T
            }
        }
    }
    for (nnf_index f = 0; f < F; ++f)
        for (nnf_index k = 0; k < K; ++k) dw[f * K + k] = (T)dwacc[k * Fpad + f];
    if (db != NULL) BC_DB(dbpart, N, F, db); /* conv_db's order: the same bits */
    return NNF_OK;
}

#undef BC_PMAX
#undef BC_TMAX
#undef VEC
#undef IVEC
#undef BVEC
#undef VL
#undef BC_FN
#undef BC_SUM
#undef BC_DB
#undef BC_DB_X
#undef BC_DB_
#undef BC_SUM_X
#undef BC_SUM_
#undef BC_CAT3
#undef BC_CAT3_
