/* dconv_impl.h - the body of dconv.h's kernels for one (type, instruction set), included by
 * dconv_base.c / dconv_avx2.c / dconv_avx512.c with T, SFX (f32/f64), ISA (base/avx2/avx512),
 * VBYTES (vector bytes), the forward's register block FB (filters) x VB (vectors) and the
 * filter gradient's DFB (filters) x DJ (taps).
 *
 * Both kernels work on the flat padded image: with Wp = W + 2*pw, output (oh, ow) sits at
 * q = oh*Wp + ow and its tap (i, j) at q + i*Wp + j of the padded plane, so a whole plane is
 * one run of q with a constant offset per tap. Columns ow >= OW of that run are computed
 * and thrown away (forward) or multiplied by zeros (dw). */
#include <stdint.h>
#include <string.h>

#include "sum.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define DC_CAT3_(a, b, c) a##_##b##_##c
#define DC_CAT3(a, b, c) DC_CAT3_(a, b, c)
#define DC_FN(name) DC_CAT3(name, SFX, ISA)
#define DC_SUM_(a) nnf_sum_##a
#define DC_SUM_X(a) DC_SUM_(a)
#define DC_SUM DC_SUM_X(SFX)

#define VL ((nnf_index)(VBYTES / sizeof(T)))
typedef T DC_FN(dc_vec) __attribute__((vector_size(VBYTES)));
#define VEC DC_FN(dc_vec)
/* the integer vector of a comparison's result (lanes of T's width), and VL bytes */
typedef IT DC_FN(dc_ivec) __attribute__((vector_size(VBYTES)));
#define IVEC DC_FN(dc_ivec)
typedef int8_t DC_FN(dc_bvec) __attribute__((vector_size(VBYTES / sizeof(T))));
#define BVEC DC_FN(dc_bvec)

/* Keep v in a register: without it GCC folds the load into each of its JN multiply-adds,
 * and the loop becomes load-bound (measured ~1.5x slower with AVX-512). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(DC_REG)
#define DC_KEEP(v) __asm__("" : "+" DC_REG(v))
#else
#define DC_KEEP(v) ((void)0)
#endif

/* The first 64-byte boundary in the caller's scratch; thread tid's region after it. */
static inline T *DC_FN(dc_region)(T *scratch, nnf_index per_thread, nnf_index tid)
{
    const uintptr_t mis = (uintptr_t)scratch % (NNF_DCONV_ALIGN * sizeof(T));
    T *base = mis ? scratch + (NNF_DCONV_ALIGN * sizeof(T) - mis) / sizeof(T) : scratch;
    return base + tid * (per_thread - NNF_DCONV_ALIGN);
}

static inline VEC DC_FN(dc_load)(const T *p)
{
    VEC v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void DC_FN(dc_store)(T *p, VEC v) { memcpy(p, &v, sizeof v); }

static inline T DC_FN(dc_hsum)(VEC v)
{
    T s = (T)0;
    for (nnf_index l = 0; l < VL; ++l) s += v[l];
    return s;
}

/* xp[c] = x[c] framed by ph rows and pw columns of zeros; the slack after the planes is
 * zeroed too (vector loads of the discarded columns run into it). Returns 1 if x holds a
 * non-finite value (only when check is set). */
static int DC_FN(dc_pad)(const T *NNF_RESTRICT x, nnf_index C, nnf_index H, nnf_index W,
                         nnf_index ph, nnf_index pw, nnf_index slack, T *NNF_RESTRICT xp,
                         int check)
{
    const nnf_index Hp = H + 2 * ph, Wp = W + 2 * pw;
    int bad = 0;
    for (nnf_index c = 0; c < C; ++c) {
        T *plane = xp + c * Hp * Wp;
        for (nnf_index k = 0; k < ph * Wp; ++k) plane[k] = (T)0;
        for (nnf_index h = 0; h < H; ++h) {
            T *row = plane + (h + ph) * Wp;
            const T *src = x + (c * H + h) * W;
            for (nnf_index k = 0; k < pw; ++k) row[k] = (T)0;
            memcpy(row + pw, src, sizeof(T) * (size_t)W);
            for (nnf_index k = pw + W; k < Wp; ++k) row[k] = (T)0;
            if (check) {
                T acc = (T)0;
                for (nnf_index k = 0; k < W; ++k) acc += src[k] - src[k]; /* NaN iff non-finite */
                bad |= acc != acc;
            }
        }
        for (nnf_index k = (H + ph) * Wp; k < Hp * Wp; ++k) plane[k] = (T)0;
    }
    for (nnf_index k = 0; k < slack; ++k) xp[C * Hp * Wp + k] = (T)0;
    return bad;
}

/* Where a forward tile's values go: image n's output planes, its ReLU mask planes (or
 * NULL), the bias (or NULL), and the geometry of the flat run. */
typedef struct {
    T *out;
    uint8_t *mask;
    const T *bias;
    nnf_index OH, OW, Wp, Q;
} DC_FN(dc_epi_t);

/* vals[q - q0] (and the ReLU mask bytes mbytes[q - q0], when asked) for q in [q0, q1) of
 * filter f go to their outputs: the columns ow < OW of each padded row they cover (the
 * others are discarded), as plain copies. */
NNF_ALWAYS_INLINE void DC_FN(dc_emit)(const DC_FN(dc_epi_t) *e, nnf_index f,
                                      const T *NNF_RESTRICT vals,
                                      const uint8_t *NNF_RESTRICT mbytes, nnf_index q0,
                                      nnf_index q1)
{
    const nnf_index Wp = e->Wp, OW = e->OW;
    T *of = e->out + f * e->OH * OW;
    uint8_t *mf = e->mask != NULL ? e->mask + f * e->OH * OW : NULL;
    for (nnf_index q = q0; q < q1;) {
        const nnf_index oh = q / Wp, ow = q - oh * Wp;
        const nnf_index row_end = oh * Wp + Wp < q1 ? oh * Wp + Wp : q1;
        if (ow < OW) {
            const nnf_index n = (oh * Wp + OW < row_end ? oh * Wp + OW : row_end) - q;
            memcpy(of + oh * OW + ow, vals + (q - q0), sizeof(T) * (size_t)n);
            if (mf != NULL) memcpy(mf + oh * OW + ow, mbytes + (q - q0), (size_t)n);
        }
        q = row_end;
    }
}

/* Outputs q in [q0, q0 + VBN*VL) (those below Q) of filters f0 .. f0 + FBN - 1: one register
 * tile. For each (c, i, j) it loads VBN vectors of the plane once and multiplies them by FBN
 * broadcast weights. */
NNF_ALWAYS_INLINE void DC_FN(dc_fwd_tile)(const T *NNF_RESTRICT xp, nnf_index C,
                                          nnf_index plane, const T *NNF_RESTRICT w,
                                          nnf_index KH, nnf_index KW, nnf_index f0,
                                          const int FBN, nnf_index q0, const int VBN,
                                          const DC_FN(dc_epi_t) *e)
{
    const nnf_index KK = KH * KW, CKK = C * KK, Wp = e->Wp;
    VEC acc[FB][VB];
    for (int fb = 0; fb < FBN; ++fb)
        for (int v = 0; v < VBN; ++v) acc[fb][v] = (VEC){0};
    for (nnf_index c = 0; c < C; ++c) {
        const T *xc = xp + c * plane + q0;
        const T *wc = w + f0 * CKK + c * KK;
        for (nnf_index i = 0; i < KH; ++i) {
            for (nnf_index j = 0; j < KW; ++j) {
                const T *xs = xc + i * Wp + j;
                VEC xv[VB];
                for (int v = 0; v < VBN; ++v) xv[v] = DC_FN(dc_load)(xs + v * VL);
                for (int fb = 0; fb < FBN; ++fb) {
                    const T wt = wc[fb * CKK + i * KW + j];
                    for (int v = 0; v < VBN; ++v) acc[fb][v] += xv[v] * wt;
                }
            }
        }
    }
    /* the epilogue on whole vectors (bias; the ReLU as Relu.forward: mask = v <= 0, where
     * v is set to +0; NaN compares false and passes), then row segments copied out */
    const nnf_index q1 = q0 + VBN * VL < e->Q ? q0 + VBN * VL : e->Q;
    const VEC zero = (VEC){0};
    for (int fb = 0; fb < FBN; ++fb) {
        T vals[VB * VL];
        uint8_t mbytes[VB * VL];
        for (int v = 0; v < VBN; ++v) {
            VEC z = acc[fb][v];
            if (e->bias != NULL) z += e->bias[f0 + fb];
            if (e->mask != NULL) {
                const IVEC m = z <= zero; /* all ones where v <= 0 */
                z = (VEC)((IVEC)z & ~m);
                const BVEC mb = __builtin_convertvector(-m, BVEC); /* 1 where set */
                memcpy(mbytes + v * VL, &mb, sizeof mb);
            }
            DC_FN(dc_store)(vals + v * VL, z);
        }
        DC_FN(dc_emit)(e, f0 + fb, vals, mbytes, q0, q1);
    }
}

/* Filters [f0, f0 + FBN) over the run q < Q: tiles of VB vectors while more than VB - 1
 * vectors are left, then one tile of just the vectors left. */
NNF_ALWAYS_INLINE void DC_FN(dc_fwd_filters)(const T *xp, nnf_index C, nnf_index plane,
                                             const T *w, nnf_index KH, nnf_index KW,
                                             nnf_index f0, const int FBN,
                                             const DC_FN(dc_epi_t) *e)
{
    const nnf_index Q = e->Q;
    nnf_index q0 = 0;
    for (; Q - q0 > (VB - 1) * VL; q0 += VB * VL) /* (the last may run past Q) */
        DC_FN(dc_fwd_tile)(xp, C, plane, w, KH, KW, f0, FBN, q0, VB, e);
    const nnf_index left = (Q - q0 + VL - 1) / VL; /* vectors, < VB */
#define DC_TAIL(k) case k: DC_FN(dc_fwd_tile)(xp, C, plane, w, KH, KW, f0, FBN, q0, k, e); break;
    switch (left) {
    DC_TAIL(1)
#if VB > 2
    DC_TAIL(2)
#endif
#if VB > 3
    DC_TAIL(3)
#endif
#if VB > 4
    DC_TAIL(4)
#endif
#if VB > 5
    DC_TAIL(5)
#endif
    default: break;
    }
#undef DC_TAIL
}

int DC_FN(nnf_dconv_fwd)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index H,
                         nnf_index W, const T *NNF_RESTRICT w, nnf_index F, nnf_index KH,
                         nnf_index KW, nnf_index ph, nnf_index pw, const T *NNF_RESTRICT bias,
                         T *NNF_RESTRICT out, uint8_t *NNF_RESTRICT relu_mask,
                         T *NNF_RESTRICT scratch, int n_threads)
{
    const nnf_index per_thread = nnf_dconv_scratch(C, H, W, F, KH, KW, ph, pw);
    if (N < 0 || per_thread < 0) return NNF_EINVAL;
    const nnf_index Hp = H + 2 * ph, Wp = W + 2 * pw, plane = Hp * Wp;
    const nnf_index OH = Hp - KH + 1, OW = Wp - KW + 1;
    const nnf_index Q = OH * Wp;
    const nnf_index slack = NNF_DCONV_QPAD + KW;
    /* (work in double: the product of sizes can exceed int64 where no array does) */
    const int parallel = n_threads > 1 && N > 1 &&
                         (double)N * F * Q * C * KH * KW >= (double)NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index n = 0; n < N; ++n) {
#ifdef _OPENMP
        const nnf_index tid = omp_get_thread_num();
#else
        const nnf_index tid = 0;
#endif
        T *xp = DC_FN(dc_region)(scratch, per_thread, tid);
        const DC_FN(dc_epi_t) e = {out + n * F * OH * OW,
                                   relu_mask != NULL ? relu_mask + n * F * OH * OW : NULL,
                                   bias, OH, OW, Wp, Q};
        DC_FN(dc_pad)(x + n * C * H * W, C, H, W, ph, pw, slack, xp, 0);
        nnf_index f0 = 0;
        for (; f0 + FB <= F; f0 += FB)
            DC_FN(dc_fwd_filters)(xp, C, plane, w, KH, KW, f0, FB, &e);
#define DC_FTAIL(k) case k: DC_FN(dc_fwd_filters)(xp, C, plane, w, KH, KW, f0, k, &e); break;
        switch (F - f0) { /* the filters left, fewer than FB */
        DC_FTAIL(1)
#if FB > 2
        DC_FTAIL(2)
#endif
#if FB > 3
        DC_FTAIL(3)
#endif
#if FB > 4
        DC_FTAIL(4)
#endif
#if FB > 5
        DC_FTAIL(5)
#endif
        default: break;
        }
#undef DC_FTAIL
    }
    return NNF_OK;
}

/* pacc[(i*KW + j0 + jj)*DFB + fb] += sum over q in [qa, qb) of dg[f0 + fb, q] *
 * xc[q + i*Wp + j0 + jj] for fb < FBN, jj < JN: FBN*JN vector accumulators (kept in pacc
 * between the chunks of q, so each one sums its terms in the same order as in one go). */
NNF_ALWAYS_INLINE void DC_FN(dc_dw_block)(const T *NNF_RESTRICT xc, const T *NNF_RESTRICT dg,
                                          nnf_index dstride, nnf_index Wp, nnf_index KW,
                                          nnf_index i, nnf_index f0, const int FBN,
                                          nnf_index j0, const int JN, nnf_index qa,
                                          nnf_index qb, T *NNF_RESTRICT pacc)
{
    VEC acc[DFB][DJ];
    T *pa = pacc + (i * KW + j0) * DFB * VL;
    for (int jj = 0; jj < JN; ++jj)
        for (int fb = 0; fb < FBN; ++fb) acc[fb][jj] = DC_FN(dc_load)(pa + (jj * DFB + fb) * VL);
    const T *xs = xc + i * Wp + j0;
    for (nnf_index q = qa; q < qb; q += VL) {
        VEC xv[DJ];
        for (int jj = 0; jj < JN; ++jj) xv[jj] = DC_FN(dc_load)(xs + q + jj);
        for (int fb = 0; fb < FBN; ++fb) {
            VEC d = DC_FN(dc_load)(dg + (f0 + fb) * dstride + q);
            DC_KEEP(d);
            for (int jj = 0; jj < JN; ++jj) acc[fb][jj] += d * xv[jj];
        }
    }
    for (int jj = 0; jj < JN; ++jj)
        for (int fb = 0; fb < FBN; ++fb) DC_FN(dc_store)(pa + (jj * DFB + fb) * VL, acc[fb][jj]);
}

/* All taps of filters [f0, f0 + FBN) for one group. Per channel, q runs in chunks of
 * DC_QCHUNK (a few KB of x and of each dout run: they stay in L1 while every (i, j) tile
 * passes over them; one pass per tile over the whole run streamed them from L2), taps in
 * chunks of up to DJ columns j; then the accumulators are summed into dw. */
#define DC_QCHUNK ((nnf_index)(4096 / sizeof(T)))
NNF_ALWAYS_INLINE void DC_FN(dc_dw_filters)(const T *xg, const T *dg, nnf_index C,
                                            nnf_index xstride, nnf_index dstride, nnf_index Wp,
                                            nnf_index KH, nnf_index KW, nnf_index f0,
                                            const int FBN, nnf_index Qv, T *pacc, T *dw)
{
    const nnf_index KK = KH * KW, CKK = C * KK;
    for (nnf_index c = 0; c < C; ++c) {
        const T *xc = xg + c * xstride;
        for (nnf_index k = 0; k < KK * DFB * VL; ++k) pacc[k] = (T)0;
        for (nnf_index qa = 0; qa < Qv; qa += DC_QCHUNK) {
            const nnf_index qb = qa + DC_QCHUNK < Qv ? qa + DC_QCHUNK : Qv;
            for (nnf_index i = 0; i < KH; ++i) {
                nnf_index j0 = 0;
                for (; j0 + DJ <= KW; j0 += DJ)
                    DC_FN(dc_dw_block)(xc, dg, dstride, Wp, KW, i, f0, FBN, j0, DJ, qa, qb, pacc);
#define DC_JTAIL(k) case k: DC_FN(dc_dw_block)(xc, dg, dstride, Wp, KW, i, f0, FBN, j0, k, qa, qb, pacc); break;
                switch (KW - j0) {
                DC_JTAIL(1)
#if DJ > 2
                DC_JTAIL(2)
#endif
#if DJ > 3
                DC_JTAIL(3)
#endif
#if DJ > 4
                DC_JTAIL(4)
#endif
                default: break;
                }
#undef DC_JTAIL
            }
        }
        for (nnf_index t = 0; t < KK; ++t)
            for (int fb = 0; fb < FBN; ++fb)
                dw[(f0 + fb) * CKK + c * KK + t] +=
                    DC_FN(dc_hsum)(DC_FN(dc_load)(pacc + (t * DFB + fb) * VL));
    }
}

/* Images are taken in groups of G (sized to stay in L2): a group's padded planes of one
 * channel are laid end to end, and its dout rows likewise at the plane's stride with
 * zeros past each image's outputs, so the whole group is one flat run per channel. */
int DC_FN(nnf_dconv_dw)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index H,
                        nnf_index W, const T *NNF_RESTRICT dout, nnf_index F, nnf_index KH,
                        nnf_index KW, nnf_index ph, nnf_index pw, T *NNF_RESTRICT dw,
                        T *NNF_RESTRICT db, T *NNF_RESTRICT scratch, int n_threads)
{
    const nnf_index per_thread = nnf_dconv_scratch(C, H, W, F, KH, KW, ph, pw);
    if (N < 0 || per_thread < 0) return NNF_EINVAL;
    const nnf_index Hp = H + 2 * ph, Wp = W + 2 * pw, plane = Hp * Wp;
    const nnf_index OH = Hp - KH + 1, OW = Wp - KW + 1;
    const nnf_index G = nnf_dconv_group(C, F, plane);
    const nnf_index CKK = C * KH * KW;
    const nnf_index blocks = (F + DFB - 1) / DFB;
    const int parallel = n_threads > 1 && blocks > 1 &&
                         (double)N * F * OH * Wp * CKK >= (double)NNF_PARALLEL_MIN_WORK;
    int bad = 0;
    (void)parallel;
    for (nnf_index k = 0; k < F * CKK; ++k) dw[k] = (T)0;

    /* Threads own blocks of filters and walk every group in order: the sums do not depend
     * on n_threads. Each thread pads the groups itself (cheap next to the products). */
#pragma omp parallel num_threads(n_threads) if(parallel) reduction(|:bad)
    {
#ifdef _OPENMP
        const nnf_index tid = omp_get_thread_num(), nth = omp_get_num_threads();
#else
        const nnf_index tid = 0, nth = 1;
#endif
        const nnf_index b_lo = blocks * tid / nth, b_hi = blocks * (tid + 1) / nth;
        const nnf_index f_lo = b_lo * DFB, f_hi = b_hi * DFB < F ? b_hi * DFB : F;
        T *xg = DC_FN(dc_region)(scratch, per_thread, tid);
        /* db's per-filter sums (double), after the largest group's dout runs */
        double *db_acc = (double *)(xg + nnf_dconv_round(C * G * plane + plane + NNF_DCONV_QPAD) +
                                    F * nnf_dconv_round(G * plane + NNF_DCONV_QPAD));
        for (nnf_index f = f_lo; f < f_hi; ++f) db_acc[f] = 0.0;
        /* the filter tiles' accumulators for one channel: KH*KW*DFB vectors */
        T *pacc = (T *)(db_acc) + nnf_dconv_round(2 * F);
        for (nnf_index n0 = 0; n0 < N && f_lo < f_hi; n0 += G) {
            const nnf_index gn = N - n0 < G ? N - n0 : G;
            const nnf_index run = gn * plane;        /* one channel's flat run */
            const nnf_index dstride = nnf_dconv_round(run + NNF_DCONV_QPAD);
            const nnf_index Qv = (run + VL - 1) / VL * VL;
            T *dg = xg + nnf_dconv_round(C * run + plane + NNF_DCONV_QPAD);
            for (nnf_index g = 0; g < gn; ++g) {
                /* image g's channels go to xg[c*run + g*plane]: pad it plane by plane */
                const T *xn = x + (n0 + g) * C * H * W;
                for (nnf_index c = 0; c < C; ++c)
                    bad |= DC_FN(dc_pad)(xn + c * H * W, 1, H, W, ph, pw, 0,
                                         xg + c * run + g * plane, 1);
                for (nnf_index f = f_lo; f < f_hi; ++f) {
                    const T *src = dout + ((n0 + g) * F + f) * OH * OW;
                    T *d = dg + f * dstride + g * plane;
                    if (db != NULL) db_acc[f] += DC_SUM(src, OH * OW); /* as conv.h's db */
                    for (nnf_index oh = 0; oh < OH; ++oh) {
                        memcpy(d + oh * Wp, src + oh * OW, sizeof(T) * (size_t)OW);
                        for (nnf_index k = OW; k < Wp; ++k) d[oh * Wp + k] = (T)0;
                    }
                    for (nnf_index k = OH * Wp; k < plane; ++k) d[k] = (T)0;
                }
            }
            /* reads run up to plane + VL past a channel's run: zeros after the last one,
             * and after each dout run */
            for (nnf_index k = 0; k < plane + NNF_DCONV_QPAD; ++k) xg[C * run + k] = (T)0;
            for (nnf_index f = f_lo; f < f_hi; ++f)
                for (nnf_index k = run; k < dstride; ++k) dg[f * dstride + k] = (T)0;
            nnf_index f0 = f_lo;
            for (; f0 + DFB <= f_hi; f0 += DFB)
                DC_FN(dc_dw_filters)(xg, dg, C, run, dstride, Wp, KH, KW, f0, DFB, Qv, pacc, dw);
#define DC_DTAIL(k) case k: DC_FN(dc_dw_filters)(xg, dg, C, run, dstride, Wp, KH, KW, f0, k, Qv, pacc, dw); break;
            switch (f_hi - f0) { /* the filters left, fewer than DFB */
            DC_DTAIL(1)
#if DFB > 2
            DC_DTAIL(2)
#endif
#if DFB > 3
            DC_DTAIL(3)
#endif
#if DFB > 4
            DC_DTAIL(4)
#endif
#if DFB > 5
            DC_DTAIL(5)
#endif
#if DFB > 6
            DC_DTAIL(6)
#endif
#if DFB > 7
            DC_DTAIL(7)
#endif
            default: break;
            }
#undef DC_DTAIL
        }
        if (db != NULL)
            for (nnf_index f = f_lo; f < f_hi; ++f) db[f] = (T)db_acc[f];
    }
    return bad ? NNF_ENONFINITE : NNF_OK;
}

#undef DC_QCHUNK
#undef VEC
#undef IVEC
#undef BVEC
#undef VL
#undef DC_FN
#undef DC_SUM
#undef DC_SUM_X
#undef DC_SUM_
#undef DC_CAT3
#undef DC_CAT3_
