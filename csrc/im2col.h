/* im2col.h - unfold images into convolution columns, and its adjoint.
 * x is (N, C, H, W) C-contiguous; col is (N*OH*OW, C*FH*FW) row-major,
 * rows ordered (n, oh, ow), columns (c, i, j); OH = (H + 2*pad - FH)/stride + 1. */
#ifndef NNFAST_IM2COL_H
#define NNFAST_IM2COL_H

#include "common.h"

/* Output extent of a window sweep: (in + 2*pad - f) / stride + 1, or -1 when
 * the window does not fit or an argument is out of range. */
nnf_index nnf_conv_out_size(nnf_index in, nnf_index f, nnf_index stride, nnf_index pad);

/* col[(n,oh,ow), (c,i,j)] = x[n, c, oh*stride - pad + i, ow*stride - pad + j] (0 outside). */
int nnf_im2col_f32(const float *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                   nnf_index FH, nnf_index FW, nnf_index stride, nnf_index pad,
                   float *col, int n_threads);
int nnf_im2col_f64(const double *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                   nnf_index FH, nnf_index FW, nnf_index stride, nnf_index pad,
                   double *col, int n_threads);

/* x[n, c, h, w] = sum over (i, j) in row-major order of the col entries that
 * im2col copied from (n, c, h, w): the adjoint of im2col (overlaps accumulate).
 * Every element of x is written; the summation order matches the reference. */
int nnf_col2im_f32(const float *col, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                   nnf_index FH, nnf_index FW, nnf_index stride, nnf_index pad,
                   float *x, int n_threads);
int nnf_col2im_f64(const double *col, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                   nnf_index FH, nnf_index FW, nnf_index stride, nnf_index pad,
                   double *x, int n_threads);

/* The planar (per-image, transposed) layout: colp is (N, C*FH*FW, OH*OW), so image n's
 * columns form a (K, P) matrix and W (FN, K) @ colp[n] is the (FN, OH, OW) output directly.
 * colp[n, (c,i,j), (oh,ow)] = x[n, c, oh*stride - pad + i, ow*stride - pad + j] (0 outside). */
int nnf_im2col_planar_f32(const float *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                          nnf_index FH, nnf_index FW, nnf_index stride, nnf_index pad,
                          float *colp, int n_threads);
int nnf_im2col_planar_f64(const double *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                          nnf_index FH, nnf_index FW, nnf_index stride, nnf_index pad,
                          double *colp, int n_threads);

/* The adjoint of im2col_planar: x[n, c, h, w] = sum over (i, j) in row-major order of the
 * colp entries copied from it. Every element of x is written; same order as col2im. */
int nnf_col2im_planar_f32(const float *colp, nnf_index N, nnf_index C, nnf_index H,
                          nnf_index W, nnf_index FH, nnf_index FW, nnf_index stride,
                          nnf_index pad, float *x, int n_threads);
int nnf_col2im_planar_f64(const double *colp, nnf_index N, nnf_index C, nnf_index H,
                          nnf_index W, nnf_index FH, nnf_index FW, nnf_index stride,
                          nnf_index pad, double *x, int n_threads);

#endif
