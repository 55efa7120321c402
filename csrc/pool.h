/* pool.h - max and average pooling, forward and backward, without im2col.
 * x, dx are (N, C, H, W) and out, dout, argmax are (N, C, OH, OW), all C-contiguous;
 * argmax holds the offset i*PW + j of the maximum inside its (PH, PW) window. */
#ifndef NNFAST_POOL_H
#define NNFAST_POOL_H

#include "common.h"
#include "isa.h"

/* out[n,c,oh,ow] = max over (i, j) of x[n, c, oh*s - pad + i, ow*s - pad + j], padding
 * = -inf; argmax = first maximum in row-major window order, a NaN beats any number. */
extern int (*nnf_maxpool_fwd_f32)(const float *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                                  nnf_index PH, nnf_index PW, nnf_index stride, nnf_index pad,
                                  float *out, int32_t *argmax, int n_threads);
extern int (*nnf_maxpool_fwd_f64)(const double *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                                  nnf_index PH, nnf_index PW, nnf_index stride, nnf_index pad,
                                  double *out, int32_t *argmax, int n_threads);

/* dx[n,c,h,w] = sum of dout[n,c,oh,ow] over the windows whose argmax is (h, w); an argmax
 * on the padding is dropped. Every element of dx is written. With relu_mask (dx's shape)
 * not NULL, the backward of the ReLU before the pooling follows: dx = 0 where the mask is
 * set (whatever the sum, as Relu.backward). */
extern int (*nnf_maxpool_bwd_f32)(const float *dout, const int32_t *argmax, nnf_index N, nnf_index C,
                                  nnf_index H, nnf_index W, nnf_index PH, nnf_index PW,
                                  nnf_index stride, nnf_index pad, const uint8_t *relu_mask, float *dx,
                                  int n_threads);
extern int (*nnf_maxpool_bwd_f64)(const double *dout, const int32_t *argmax, nnf_index N, nnf_index C,
                                  nnf_index H, nnf_index W, nnf_index PH, nnf_index PW,
                                  nnf_index stride, nnf_index pad, const uint8_t *relu_mask, double *dx,
                                  int n_threads);

/* out[n,c,oh,ow] = (sum over the window of x, padding = 0) / (PH*PW). */
extern int (*nnf_avgpool_fwd_f32)(const float *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                                  nnf_index PH, nnf_index PW, nnf_index stride, nnf_index pad,
                                  float *out, int n_threads);
extern int (*nnf_avgpool_fwd_f64)(const double *x, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                                  nnf_index PH, nnf_index PW, nnf_index stride, nnf_index pad,
                                  double *out, int n_threads);

/* dx[n,c,h,w] = sum over the windows holding (h, w) of dout[n,c,oh,ow] / (PH*PW).
 * Every element of dx is written. */
extern int (*nnf_avgpool_bwd_f32)(const float *dout, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                                  nnf_index PH, nnf_index PW, nnf_index stride, nnf_index pad,
                                  float *dx, int n_threads);
extern int (*nnf_avgpool_bwd_f64)(const double *dout, nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                                  nnf_index PH, nnf_index PW, nnf_index stride, nnf_index pad,
                                  double *dx, int n_threads);


/* The dispatched entry points above (function pointers set by nnf_isa_select in
 * isa.h; they start at the baseline build). */
#define NNF_POOL_FUNCS(X) \
    X(nnf_maxpool_fwd_f32) \
    X(nnf_maxpool_fwd_f64) \
    X(nnf_maxpool_bwd_f32) \
    X(nnf_maxpool_bwd_f64) \
    X(nnf_avgpool_fwd_f32) \
    X(nnf_avgpool_fwd_f64) \
    X(nnf_avgpool_bwd_f32) \
    X(nnf_avgpool_bwd_f64)

#endif
