/* dconv.h - direct convolution for stride 1 (no im2col), and its filter gradient.
 * x (N, C, H, W), w (F, C, KH, KW), out/dout (N, F, OH, OW), zero padding (ph, pw):
 * OH = H + 2*ph - KH + 1, OW = W + 2*pw - KW + 1; all C-contiguous.
 * Each image is padded once into per-thread scratch; outputs are accumulated in vector
 * registers over (c, i, j). Vector code is chosen at run time (baseline, AVX2+FMA,
 * AVX-512F); the vector paths use FMA, so results differ from a GEMM's in the last bits. */
#ifndef NNFAST_DCONV_H
#define NNFAST_DCONV_H

#include "common.h"
#include "isa.h" /* the NNF_ISA_* levels */

/* Elements of padding after each flat run in scratch (at least any kernel's register
 * block, VB vectors: the blocks run past the end of a plane and throw those results away). */
#define NNF_DCONV_QPAD 128

/* Scratch regions start on 64-byte boundaries (the filter gradient's dout loads are then
 * aligned): sizes are rounded up to NNF_DCONV_ALIGN elements, and each thread's scratch
 * counts one NNF_DCONV_ALIGN more for aligning the caller's pointer. */
#define NNF_DCONV_ALIGN 16
static inline nnf_index nnf_dconv_round(nnf_index n)
{
    return (n + NNF_DCONV_ALIGN - 1) / NNF_DCONV_ALIGN * NNF_DCONV_ALIGN;
}

/* Images per group in the filter-gradient kernel: as many as keep a group's padded
 * planes (C + F of them each) within about 128K elements, between 1 and 64. */
nnf_index nnf_dconv_group(nnf_index C, nnf_index F, nnf_index plane);

/* The best level this build and this CPU support. */
int nnf_dconv_isa(void);
/* 1 when the direct convolutions (dconv, bconv) are compiled in: the compiler has GCC/clang
 * vector extensions (common.h: NNF_HAVE_VECTOR_EXT); 0 (MSVC) when every entry point
 * returns NNF_EINVAL. */
int nnf_dconv_built(void);

/* Scratch elements (of the data type) one thread needs, or -1 for an invalid geometry
 * or a size that does not fit in nnf_index. Callers pass n_threads times this. */
nnf_index nnf_dconv_scratch(nnf_index C, nnf_index H, nnf_index W, nnf_index F,
                            nnf_index KH, nnf_index KW, nnf_index ph, nnf_index pw);

/* out[n, f, oh, ow] = sum over (c, i, j) of w[f, c, i, j] * xpad[n, c, oh + i, ow + j]
 * (+ bias[f] when bias is not NULL). With relu_mask (same shape as out) not NULL, a ReLU
 * follows in the same pass: relu_mask = (v <= 0), out = 0 there (NaN passes through).
 * isa: -1 for the best, or a level (NNF_EINVAL if the CPU lacks it). Parallel over images;
 * results do not depend on n_threads. */
int nnf_dconv_fwd_f32(const float *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                      const float *w, nnf_index F, nnf_index KH, nnf_index KW, nnf_index ph,
                      nnf_index pw, const float *bias, float *out, uint8_t *relu_mask,
                      float *scratch, int n_threads, int isa);
int nnf_dconv_fwd_f64(const double *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                      const double *w, nnf_index F, nnf_index KH, nnf_index KW, nnf_index ph,
                      nnf_index pw, const double *bias, double *out, uint8_t *relu_mask,
                      double *scratch, int n_threads, int isa);

/* dw[f, c, i, j] = sum over n, then (oh, ow), of dout[n, f, oh, ow] * xpad[n, c, oh + i, ow + j].
 * With db not NULL also db[f] = sum of dout[:, f], summed exactly as conv.h's db (the same
 * bits), while dout is read anyway. Parallel over filters, images summed in order: results
 * do not depend on n_threads. NNF_ENONFINITE (dw, db undefined) if x holds inf or NaN. */
int nnf_dconv_dw_f32(const float *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                     const float *dout, nnf_index F, nnf_index KH, nnf_index KW, nnf_index ph,
                     nnf_index pw, float *dw, float *db, float *scratch, int n_threads, int isa);
int nnf_dconv_dw_f64(const double *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                     const double *dout, nnf_index F, nnf_index KH, nnf_index KW, nnf_index ph,
                     nnf_index pw, double *dw, double *db, double *scratch, int n_threads,
                     int isa);

#endif
