/* dconv.c - the direct stride-1 convolution: scratch sizes, argument checks, and the run-time
 * choice of the vector code (dconv_base.c, dconv_avx2.c, dconv_avx512.c). */
#include "dconv.h"
#include "dconv_isa.h"

static nnf_index mul_or_neg(nnf_index a, nnf_index b) /* a*b for a, b >= 0, -1 on overflow */
{
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > INT64_MAX / a) return -1;
    return a * b;
}

static nnf_index add_or_neg(nnf_index a, nnf_index b)
{
    if (a < 0 || b < 0 || a > INT64_MAX - b) return -1;
    return a + b;
}

static nnf_index round_or_neg(nnf_index n)
{
    return n < 0 || n > INT64_MAX - NNF_DCONV_ALIGN ? -1 : nnf_dconv_round(n);
}

nnf_index nnf_dconv_group(nnf_index C, nnf_index F, nnf_index plane)
{
    const nnf_index per_image = (C + F) * plane; /* callers checked it does not overflow */
    nnf_index g = per_image > 0 ? ((nnf_index)1 << 17) / per_image : 1;
    return g < 1 ? 1 : (g > 64 ? 64 : g);
}

nnf_index nnf_dconv_scratch(nnf_index C, nnf_index H, nnf_index W, nnf_index F,
                            nnf_index KH, nnf_index KW, nnf_index ph, nnf_index pw)
{
    if (C < 1 || H < 1 || W < 1 || F < 1 || KH < 1 || KW < 1 || ph < 0 || pw < 0) return -1;
    if (ph > (INT64_MAX / 4 - H) / 2 || pw > (INT64_MAX / 4 - W) / 2) return -1;
    const nnf_index Hp = H + 2 * ph, Wp = W + 2 * pw;
    if (KH > Hp || KW > Wp) return -1;
    const nnf_index plane = mul_or_neg(Hp, Wp);
    /* forward: one padded image + slack (each tile writes its outputs itself) */
    const nnf_index fwd = round_or_neg(add_or_neg(mul_or_neg(C, plane), NNF_DCONV_QPAD + KW));
    /* filter gradient: a group of G images' planes + (plane + QPAD) slack, then F dout runs
     * of G*plane + QPAD ... */
    const nnf_index cf = add_or_neg(C, F);
    if (fwd < 0 || cf < 0 || mul_or_neg(cf, plane) < 0) return -1;
    const nnf_index run = mul_or_neg(nnf_dconv_group(C, F, plane), plane);
    /* ... then F doubles for db (2F elements: at least 8 bytes each), then the tiles'
     * accumulators for one channel, KH*KW*DFB vectors (DFB <= 8, VL <= 16 elements) */
    const nnf_index dw = add_or_neg(add_or_neg(add_or_neg(
        round_or_neg(add_or_neg(mul_or_neg(C, run), add_or_neg(plane, NNF_DCONV_QPAD))),
        mul_or_neg(F, round_or_neg(add_or_neg(run, NNF_DCONV_QPAD)))),
        round_or_neg(mul_or_neg(F, 2))), round_or_neg(mul_or_neg(mul_or_neg(KH, KW), 8 * 16)));
    if (dw < 0) return -1;
    return add_or_neg(fwd > dw ? fwd : dw, NNF_DCONV_ALIGN); /* both multiples of ALIGN */
}

int nnf_dconv_built(void) { return NNF_HAVE_VECTOR_EXT; }

int nnf_dconv_isa(void)
{
#if defined(NNF_DCONV_X86) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return NNF_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NNF_ISA_AVX2;
#endif
    return NNF_ISA_BASE;
}

/* the baseline build exists only with vector extensions (common.h) */
#if NNF_HAVE_VECTOR_EXT
#define NNF_DCONV_CASE_BASE(call) case NNF_ISA_BASE: return call;
#else
#define NNF_DCONV_CASE_BASE(call)
#endif

static int pick(int isa)
{
    const int best = nnf_dconv_isa();
    if (isa < 0) return best;
    return isa <= best ? isa : -1;
}

#define DEFINE_ENTRIES(T, SFX)                                                              \
    int nnf_dconv_fwd_##SFX(const T *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W, \
                            const T *w, nnf_index F, nnf_index KH, nnf_index KW,             \
                            nnf_index ph, nnf_index pw, const T *bias, T *out,               \
                            uint8_t *relu_mask, T *scratch, int n_threads, int isa)          \
    {                                                                                        \
        if (N < 0 || n_threads < 1) return NNF_EINVAL;                                       \
        switch (pick(isa)) {                                                                 \
        NNF_DCONV_CASE_BASE(nnf_dconv_fwd_##SFX##_base(x, N, C, H, W, w, F, KH, KW, ph, pw,  \
                                                       bias, out, relu_mask, scratch,        \
                                                       n_threads))                           \
        NNF_DCONV_CASES_FWD(SFX)                                                             \
        default: return NNF_EINVAL;                                                          \
        }                                                                                    \
    }                                                                                        \
    int nnf_dconv_dw_##SFX(const T *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,  \
                           const T *dout, nnf_index F, nnf_index KH, nnf_index KW,           \
                           nnf_index ph, nnf_index pw, T *dw, T *db, T *scratch,             \
                           int n_threads, int isa)                                           \
    {                                                                                        \
        if (N < 0 || n_threads < 1) return NNF_EINVAL;                                       \
        switch (pick(isa)) {                                                                 \
        NNF_DCONV_CASE_BASE(nnf_dconv_dw_##SFX##_base(x, N, C, H, W, dout, F, KH, KW, ph, pw, \
                                                      dw, db, scratch, n_threads))            \
        NNF_DCONV_CASES_DW(SFX)                                                              \
        default: return NNF_EINVAL;                                                          \
        }                                                                                    \
    }

#ifdef NNF_DCONV_X86
#define NNF_DCONV_CASES_FWD(SFX)                                                             \
    case NNF_ISA_AVX2:                                                                       \
        return nnf_dconv_fwd_##SFX##_avx2(x, N, C, H, W, w, F, KH, KW, ph, pw, bias, out,   \
                                          relu_mask, scratch, n_threads);                   \
    case NNF_ISA_AVX512:                                                                     \
        return nnf_dconv_fwd_##SFX##_avx512(x, N, C, H, W, w, F, KH, KW, ph, pw, bias, out, \
                                            relu_mask, scratch, n_threads);
#define NNF_DCONV_CASES_DW(SFX)                                                              \
    case NNF_ISA_AVX2:                                                                       \
        return nnf_dconv_dw_##SFX##_avx2(x, N, C, H, W, dout, F, KH, KW, ph, pw, dw, db,    \
                                         scratch, n_threads);                               \
    case NNF_ISA_AVX512:                                                                     \
        return nnf_dconv_dw_##SFX##_avx512(x, N, C, H, W, dout, F, KH, KW, ph, pw, dw, db,  \
                                           scratch, n_threads);
#else
#define NNF_DCONV_CASES_FWD(SFX)
#define NNF_DCONV_CASES_DW(SFX)
#endif

DEFINE_ENTRIES(float, f32)
DEFINE_ENTRIES(double, f64)
