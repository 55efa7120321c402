/* eltwise.h - element-wise activations, their derivatives and dropout's passes.
 * Every array is a flat, C-contiguous run of n elements; masks are bytes (0/1, NumPy bool). */
#ifndef NNFAST_ELTWISE_H
#define NNFAST_ELTWISE_H

#include "common.h"
#include "isa.h"

/* out = (x < 0) ? 0 : x   (np.maximum(0, x): NaN and -0.0 pass through). */
extern void (*nnf_relu_f32)(const float *x, nnf_index n, float *out, int n_threads);
extern void (*nnf_relu_f64)(const double *x, nnf_index n, double *out, int n_threads);

/* mask = (x <= 0); out = mask ? 0 : x   (the Relu layer's forward, one pass). */
extern void (*nnf_relu_fwd_f32)(const float *x, nnf_index n, float *out, uint8_t *mask, int n_threads);
extern void (*nnf_relu_fwd_f64)(const double *x, nnf_index n, double *out, uint8_t *mask, int n_threads);

/* dx = mask ? 0 : dout   (dout is read only). */
extern void (*nnf_relu_bwd_f32)(const float *dout, const uint8_t *mask, nnf_index n, float *dx, int n_threads);
extern void (*nnf_relu_bwd_f64)(const double *dout, const uint8_t *mask, nnf_index n, double *dx, int n_threads);

/* out = (x > 0) ? 1 : 0 if inclusive == 0 (d_relu), (x >= 0) ? 1 : 0 otherwise (relu_grad). */
extern void (*nnf_positive_f32)(const float *x, nnf_index n, int inclusive, float *out, int n_threads);
extern void (*nnf_positive_f64)(const double *x, nnf_index n, int inclusive, double *out, int n_threads);

/* out = (x > 0) as int64 (step_function). */
extern void (*nnf_step_f32)(const float *x, nnf_index n, int64_t *out, int n_threads);
extern void (*nnf_step_f64)(const double *x, nnf_index n, int64_t *out, int n_threads);

/* out = -|x|   (the argument of the exponential in the stable sigmoid). */
extern void (*nnf_neg_abs_f32)(const float *x, nnf_index n, float *out, int n_threads);
extern void (*nnf_neg_abs_f64)(const double *x, nnf_index n, double *out, int n_threads);

/* Given e = exp(-|x|) (computed by the caller: NumPy's exp, the reference's):
 * s = x >= 0 ? 1/(1+e) : e/(1+e); out = s, or (1 - s)*s if derivative (d_sigmoid).
 * out may be e itself (in place). Never overflows. */
extern void (*nnf_sigmoid_finish_f32)(const float *x, const float *e, nnf_index n, int derivative,
                                      float *out, int n_threads);
extern void (*nnf_sigmoid_finish_f64)(const double *x, const double *e, nnf_index n, int derivative,
                                      double *out, int n_threads);

/* dx = dout * (1 - y) * y, left to right   (the Sigmoid layer's backward). */
extern void (*nnf_sigmoid_bwd_f32)(const float *dout, const float *y, nnf_index n, float *dx, int n_threads);
extern void (*nnf_sigmoid_bwd_f64)(const double *dout, const double *y, nnf_index n, double *dx, int n_threads);

/* out = a * mask   (dropout's forward and backward; the mask comes from NumPy's draws; x * 0 keeps IEEE semantics: inf*0 = NaN, -x*0 = -0). */
extern void (*nnf_mul_mask_f32)(const float *a, const uint8_t *mask, nnf_index n, float *out, int n_threads);
extern void (*nnf_mul_mask_f64)(const double *a, const uint8_t *mask, nnf_index n, double *out, int n_threads);

/* out = a * (T)s   (dropout's test-time scaling by 1 - ratio). */
extern void (*nnf_scale_f32)(const float *a, double s, nnf_index n, float *out, int n_threads);
extern void (*nnf_scale_f64)(const double *a, double s, nnf_index n, double *out, int n_threads);


/* The dispatched entry points above (function pointers set by nnf_isa_select in
 * isa.h; they start at the baseline build). */
#define NNF_ELTWISE_FUNCS(X) \
    X(nnf_relu_f32) \
    X(nnf_relu_f64) \
    X(nnf_relu_fwd_f32) \
    X(nnf_relu_fwd_f64) \
    X(nnf_relu_bwd_f32) \
    X(nnf_relu_bwd_f64) \
    X(nnf_positive_f32) \
    X(nnf_positive_f64) \
    X(nnf_step_f32) \
    X(nnf_step_f64) \
    X(nnf_neg_abs_f32) \
    X(nnf_neg_abs_f64) \
    X(nnf_sigmoid_finish_f32) \
    X(nnf_sigmoid_finish_f64) \
    X(nnf_sigmoid_bwd_f32) \
    X(nnf_sigmoid_bwd_f64) \
    X(nnf_mul_mask_f32) \
    X(nnf_mul_mask_f64) \
    X(nnf_scale_f32) \
    X(nnf_scale_f64)

#endif
