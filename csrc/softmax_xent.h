/* softmax_xent.h - row softmax and fused softmax + cross-entropy (forward and gradient).
 * x, y, dx, t are (rows, cols) C-contiguous, one sample per row; labels are (rows,) int64. */
#ifndef NNFAST_SOFTMAX_XENT_H
#define NNFAST_SOFTMAX_XENT_H

#include "common.h"
#include "isa.h"

/* Added inside the log of the cross-entropy (rounded to T, as NumPy does for y + 1e-7). */
#define NNF_CE_EPS 1e-7

/* The exponentials are nnfast's own (softmax_xent_impl.h: within 2 ulp of the exact value,
 * the same bits on every build), so that a softmax is one pass per row in C. */

/* y = softmax of each row of x: exp(x - max_r) / sum (a NaN in a row makes the row NaN, as
 * np.max does). */
extern void (*nnf_softmax_f32)(const float *x, nnf_index rows, nnf_index cols, float *y,
                               int n_threads);
extern void (*nnf_softmax_f64)(const double *x, nnf_index rows, nnf_index cols, double *y,
                               int n_threads);

/* One pass per row: y = softmax(x); row_loss[r] = log(y[r, labels[r]] + eps) (in T);
 * *loss = -sum_r row_loss[r] / rows (summed in row order, in double);
 * if dx != NULL: dx = (y - t) / rows with the dense teacher t when t != NULL, else
 * y with 1 subtracted at each label, / rows. Returns NNF_EINVAL, writing nothing,
 * if a label is outside [0, cols). */
extern int (*nnf_softmax_xent_f32)(const float *x, nnf_index rows, nnf_index cols,
                                   const int64_t *labels, const float *t, float *y, float *dx,
                                   double *row_loss, double *loss, int n_threads);
extern int (*nnf_softmax_xent_f64)(const double *x, nnf_index rows, nnf_index cols,
                                   const int64_t *labels, const double *t, double *y,
                                   double *dx, double *row_loss, double *loss, int n_threads);

/* dx = (y - t) / rows if t != NULL, else y with 1 subtracted at each label, / rows.
 * Returns NNF_EINVAL, writing nothing, if t == NULL and a label is outside [0, cols). */
extern int (*nnf_softmax_xent_bwd_f32)(const float *y, nnf_index rows, nnf_index cols,
                                       const int64_t *labels, const float *t, float *dx, int n_threads);
extern int (*nnf_softmax_xent_bwd_f64)(const double *y, nnf_index rows, nnf_index cols,
                                       const int64_t *labels, const double *t, double *dx, int n_threads);

/* *loss = -sum_r log(y[r, labels[r]] + eps) / rows (terms in T, summed in double).
 * Returns NNF_EINVAL if a label is outside [0, cols). */
extern int (*nnf_cross_entropy_f32)(const float *y, nnf_index rows, nnf_index cols,
                                    const int64_t *labels, double *loss);
extern int (*nnf_cross_entropy_f64)(const double *y, nnf_index rows, nnf_index cols,
                                    const int64_t *labels, double *loss);


/* The dispatched entry points above (function pointers set by nnf_isa_select in
 * isa.h; they start at the baseline build). */
#define NNF_SOFTMAX_XENT_FUNCS(X) \
    X(nnf_softmax_f32) \
    X(nnf_softmax_f64) \
    X(nnf_softmax_xent_f32) \
    X(nnf_softmax_xent_f64) \
    X(nnf_softmax_xent_bwd_f32) \
    X(nnf_softmax_xent_bwd_f64) \
    X(nnf_cross_entropy_f32) \
    X(nnf_cross_entropy_f64)

#endif
