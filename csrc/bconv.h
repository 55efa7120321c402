/* bconv.h - convolution with vector lanes over output channels (any stride, zero padding).
 * x (N, C, H, W), w (F, C, KH, KW), out/dout (N, F, OH, OW), all C-contiguous;
 * OH = (H + 2*ph - KH) / sh + 1, OW = (W + 2*pw - KW) / sw + 1.
 *
 * The register tile holds FV vectors of output channels for PN output positions of one
 * row (forward: packed weights loaded as vectors, each input value broadcast), or FV
 * vectors of filters for TK taps (filter gradient: dout transposed to (positions,
 * channels) rows, each input value broadcast). Only the products the reference's im2col
 * GEMM forms are computed (no discarded columns), so inf and NaN propagate as there.
 * Every output element is one fixed sum whatever n_threads is; vector code is chosen at
 * run time (baseline, AVX2+FMA, AVX-512F) and uses FMA, so results differ from a GEMM's
 * in the last bits. */
#ifndef NNFAST_BCONV_H
#define NNFAST_BCONV_H

#include "common.h"

/* Elements of size bytes each in a scratch region of n of them, rounded up so that every
 * region starts on a 64-byte boundary. */
static inline nnf_index nnf_bconv_elems(nnf_index n, nnf_index size)
{
    return ((n * size + 63) / 64 * 64) / size;
}

/* Scratch elements (of a type of tbytes = 4 or 8 bytes) the forward needs for this
 * geometry and thread count, or -1 for an invalid geometry or a size that overflows. */
nnf_index nnf_bconv_fwd_scratch(nnf_index C, nnf_index H, nnf_index W, nnf_index F,
                                nnf_index KH, nnf_index KW, nnf_index sh, nnf_index sw,
                                nnf_index ph, nnf_index pw, int n_threads, int tbytes);
/* The same for the filter gradient of N images (it pads all of them and transposes all of
 * dout before the products). */
nnf_index nnf_bconv_dw_scratch(nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                               nnf_index F, nnf_index KH, nnf_index KW, nnf_index sh,
                               nnf_index sw, nnf_index ph, nnf_index pw, int n_threads,
                               int tbytes);

/* out[n, f, oh, ow] = sum over (c, i, j) of w[f, c, i, j] * xpad[n, c, oh*sh + i, ow*sw + j]
 * (+ bias[f] unless NULL), summed in (c, i, j) order. With relu_mask (out's shape) not
 * NULL a ReLU follows in the same pass: relu_mask = (v <= 0), out = 0 there (NaN passes).
 * isa: -1 for the best, or a level of dconv.h (NNF_EINVAL if the CPU lacks it). Parallel
 * over images. */
int nnf_bconv_fwd_f32(const float *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                      const float *w, nnf_index F, nnf_index KH, nnf_index KW, nnf_index sh,
                      nnf_index sw, nnf_index ph, nnf_index pw, const float *bias,
                      float *out, uint8_t *relu_mask, float *scratch, int n_threads, int isa);
int nnf_bconv_fwd_f64(const double *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                      const double *w, nnf_index F, nnf_index KH, nnf_index KW, nnf_index sh,
                      nnf_index sw, nnf_index ph, nnf_index pw, const double *bias,
                      double *out, uint8_t *relu_mask, double *scratch, int n_threads,
                      int isa);

/* dw[f, c, i, j] = sum over n, oh, ow of dout[n, f, oh, ow] * xpad[n, c, oh*sh + i, ow*sw + j]:
 * per group of images (a fixed size, sized for L2) one sum in T over the group's positions
 * in order, the groups' sums added in double in order. With db not NULL also
 * db[f] = sum of dout[:, f], with the same bits as conv.h's db. Parallel over tiles of
 * (filters, taps). */
int nnf_bconv_dw_f32(const float *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                     const float *dout, nnf_index F, nnf_index KH, nnf_index KW, nnf_index sh,
                     nnf_index sw, nnf_index ph, nnf_index pw, float *dw, float *db,
                     float *scratch, int n_threads, int isa);
int nnf_bconv_dw_f64(const double *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                     const double *dout, nnf_index F, nnf_index KH, nnf_index KW,
                     nnf_index sh, nnf_index sw, nnf_index ph, nnf_index pw, double *dw,
                     double *db, double *scratch, int n_threads, int isa);

/* Images per group of the filter gradient (the same for every ISA and thread count, so
 * the sums do not depend on them). */
nnf_index nnf_bconv_group(nnf_index N, nnf_index C, nnf_index H, nnf_index W, nnf_index F,
                          nnf_index KH, nnf_index KW, nnf_index sh, nnf_index sw,
                          nnf_index ph, nnf_index pw, int tbytes);

#endif
