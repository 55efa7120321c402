/* bconv.c - the channel-lane convolution: scratch sizes, the filter gradient's image
 * groups, and the run-time choice of the vector code (bconv_base.c, bconv_avx2.c,
 * bconv_avx512.c; the levels and the CPU test are dconv.h's). */
#include "bconv.h"
#include "bconv_isa.h"

/* The geometry's sizes, or 0 when it is invalid or some size would not fit in nnf_index
 * (checked in double: exact well past any array that fits in memory). */
typedef struct {
    nnf_index plane, M, K, Fpad; /* Fpad: F rounded up to the widest vector's lanes */
} bc_geo;

static int geometry(nnf_index C, nnf_index H, nnf_index W, nnf_index F, nnf_index KH,
                    nnf_index KW, nnf_index sh, nnf_index sw, nnf_index ph, nnf_index pw,
                    int tbytes, bc_geo *g)
{
    if (C < 1 || H < 1 || W < 1 || F < 1 || KH < 1 || KW < 1 || sh < 1 || sw < 1 || ph < 0 ||
        pw < 0 || (tbytes != 4 && tbytes != 8))
        return 0;
    const double lim = 4.0e15; /* elements: far below INT64_MAX / 64 */
    const double Hp = (double)H + 2.0 * (double)ph, Wp = (double)W + 2.0 * (double)pw;
    if (Hp > lim || Wp > lim || (double)KH > Hp || (double)KW > Wp) return 0;
    const nnf_index lanes = 64 / tbytes;
    const double Fpad = (double)((F + lanes - 1) / lanes * lanes);
    const double OH = (double)(((nnf_index)Hp - KH) / sh + 1);
    const double OW = (double)(((nnf_index)Wp - KW) / sw + 1);
    if (Hp * Wp * (double)C > lim || OH * OW * Fpad > lim || (double)C * KH * KW * Fpad > lim)
        return 0;
    g->plane = (nnf_index)(Hp * Wp);
    g->M = (nnf_index)(OH * OW);
    g->K = C * KH * KW;
    g->Fpad = (nnf_index)Fpad;
    return 1;
}

/* elements of tbytes bytes holding the byte count b (b a multiple of 64 up to rounding) */
static nnf_index elems(double bytes, int tbytes)
{
    return bytes > 4.0e15 ? -1 : (nnf_index)(bytes / tbytes) + 1;
}

static double region(double n, double size) { return ((nnf_index)(n * size) + 63) / 64 * 64; }

nnf_index nnf_bconv_fwd_scratch(nnf_index C, nnf_index H, nnf_index W, nnf_index F,
                                nnf_index KH, nnf_index KW, nnf_index sh, nnf_index sw,
                                nnf_index ph, nnf_index pw, int n_threads, int tbytes)
{
    bc_geo g;
    if (n_threads < 1 || !geometry(C, H, W, F, KH, KW, sh, sw, ph, pw, tbytes, &g)) return -1;
    const double per_thread = region((double)C * g.plane, tbytes) + region((double)g.M * g.Fpad, tbytes);
    return elems(64.0 + region((double)g.Fpad * g.K, tbytes) + n_threads * per_thread, tbytes);
}

nnf_index nnf_bconv_group(nnf_index N, nnf_index C, nnf_index H, nnf_index W, nnf_index F,
                          nnf_index KH, nnf_index KW, nnf_index sh, nnf_index sw,
                          nnf_index ph, nnf_index pw, int tbytes)
{
    bc_geo g;
    if (N < 1 || !geometry(C, H, W, F, KH, KW, sh, sw, ph, pw, tbytes, &g)) return 1;
    /* a group's padded images and transposed dout within about 384 KB (in L2 while each
     * thread's tiles pass over them), between 1 and 64 images */
    const double per_image = region((double)C * g.plane, tbytes) + region((double)g.M * g.Fpad, tbytes);
    nnf_index G = (nnf_index)(384.0 * 1024.0 / per_image);
    if (G < 1) G = 1;
    if (G > 64) G = 64;
    return G < N ? G : N;
}

nnf_index nnf_bconv_dw_scratch(nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                               nnf_index F, nnf_index KH, nnf_index KW, nnf_index sh,
                               nnf_index sw, nnf_index ph, nnf_index pw, int n_threads,
                               int tbytes)
{
    bc_geo g;
    if (N < 1 || n_threads < 1 || !geometry(C, H, W, F, KH, KW, sh, sw, ph, pw, tbytes, &g))
        return -1;
    if ((double)N * F > 4.0e15) return -1;
    const double bytes = 64.0 + region((double)g.K * g.Fpad, 8) + region((double)N * F, 8) +
                         region((double)g.K, 8) +
                         (double)N * (region((double)C * g.plane, tbytes) + region((double)g.M * g.Fpad, tbytes));
    return elems(bytes, tbytes);
}

/* the baseline build exists only with vector extensions (common.h) */
#if NNF_HAVE_VECTOR_EXT
#define NNF_BCONV_CASE_BASE(call) case NNF_ISA_BASE: return call;
#else
#define NNF_BCONV_CASE_BASE(call)
#endif

static int pick(int isa)
{
    const int best = nnf_dconv_isa();
    if (isa < 0) return best;
    return isa <= best ? isa : -1;
}

#ifdef NNF_DCONV_X86
#define BC_CASES(call, SFX)                                                                 \
    case NNF_ISA_AVX2: return call(SFX, avx2);                                              \
    case NNF_ISA_AVX512: return call(SFX, avx512);
#else
#define BC_CASES(call, SFX)
#endif

#define BC_FWD(SFX, ISA) nnf_bconv_fwd_##SFX##_##ISA(x, N, C, H, W, w, F, KH, KW, sh, sw, ph, \
                                                     pw, bias, out, relu_mask, scratch,   \
                                                     n_threads)
#define BC_DW(SFX, ISA) nnf_bconv_dw_##SFX##_##ISA(x, N, C, H, W, dout, F, KH, KW, sh, sw, \
                                                   ph, pw, dw, db, scratch, n_threads)

#define DEFINE_ENTRIES(T, SFX)                                                              \
    int nnf_bconv_fwd_##SFX(const T *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W, \
                            const T *w, nnf_index F, nnf_index KH, nnf_index KW,             \
                            nnf_index sh, nnf_index sw, nnf_index ph, nnf_index pw,          \
                            const T *bias, T *out, uint8_t *relu_mask, T *scratch,           \
                            int n_threads, int isa)                                          \
    {                                                                                        \
        if (N < 0 || n_threads < 1) return NNF_EINVAL;                                       \
        if (N == 0) return NNF_OK;                                                           \
        switch (pick(isa)) {                                                                 \
        NNF_BCONV_CASE_BASE(BC_FWD(SFX, base))                                         \
        BC_CASES(BC_FWD, SFX)                                                                \
        default: return NNF_EINVAL;                                                          \
        }                                                                                    \
    }                                                                                        \
    int nnf_bconv_dw_##SFX(const T *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,  \
                           const T *dout, nnf_index F, nnf_index KH, nnf_index KW,           \
                           nnf_index sh, nnf_index sw, nnf_index ph, nnf_index pw, T *dw,    \
                           T *db, T *scratch, int n_threads, int isa)                        \
    {                                                                                        \
        if (N < 1 || n_threads < 1) return NNF_EINVAL;                                       \
        switch (pick(isa)) {                                                                 \
        NNF_BCONV_CASE_BASE(BC_DW(SFX, base))                                          \
        BC_CASES(BC_DW, SFX)                                                                 \
        default: return NNF_EINVAL;                                                          \
        }                                                                                    \
    }

DEFINE_ENTRIES(float, f32)
DEFINE_ENTRIES(double, f64)
