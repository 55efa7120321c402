/* optim.h - in-place optimizer updates, one fused pass per parameter, float and double.
 * p, g and the state arrays (v, h, m) are flat C-contiguous runs of n elements. */
#ifndef NNFAST_OPTIM_H
#define NNFAST_OPTIM_H

#include "common.h"
#include "isa.h"

/* Added to the root of the accumulated squares before dividing. */
#define NNF_OPT_EPS 1e-7

/* Hyper-parameters arrive as double and are rounded to T where NumPy would round a Python
 * float operand: every form below is the reference's, operation for operation. */

/* p -= lr*g */
extern void (*nnf_sgd_f32)(float *p, const float *g, nnf_index n, double lr, int n_threads);
extern void (*nnf_sgd_f64)(double *p, const double *g, nnf_index n, double lr, int n_threads);

/* v = momentum*v - lr*g; p += v */
extern void (*nnf_momentum_f32)(float *p, const float *g, float *v, nnf_index n, double lr,
                                double momentum, int n_threads);
extern void (*nnf_momentum_f64)(double *p, const double *g, double *v, nnf_index n, double lr,
                                double momentum, int n_threads);

/* p += (momentum*momentum)*v; p -= ((1+momentum)*lr)*g; v *= momentum; v -= lr*g */
extern void (*nnf_nesterov_f32)(float *p, const float *g, float *v, nnf_index n, double lr,
                                double momentum, int n_threads);
extern void (*nnf_nesterov_f64)(double *p, const double *g, double *v, nnf_index n, double lr,
                                double momentum, int n_threads);

/* h += g*g; p -= lr*g / (sqrt(h) + eps) */
extern void (*nnf_adagrad_f32)(float *p, const float *g, float *h, nnf_index n, double lr, int n_threads);
extern void (*nnf_adagrad_f64)(double *p, const double *g, double *h, nnf_index n, double lr, int n_threads);

/* h *= rho; h += (1-rho)*g*g; p -= lr*g / (sqrt(h) + eps) */
extern void (*nnf_rmsprop_f32)(float *p, const float *g, float *h, nnf_index n, double lr, double rho,
                               int n_threads);
extern void (*nnf_rmsprop_f64)(double *p, const double *g, double *h, nnf_index n, double lr, double rho,
                               int n_threads);

/* m += (1-beta1)*(g - m); v += (1-beta2)*(g*g - v); p -= lr_t*m / (sqrt(v) + eps)
 * (lr_t, the bias-corrected step, is computed by the caller). */
extern void (*nnf_adam_f32)(float *p, const float *g, float *m, float *v, nnf_index n, double lr_t,
                            double beta1, double beta2, int n_threads);
extern void (*nnf_adam_f64)(double *p, const double *g, double *m, double *v, nnf_index n, double lr_t,
                            double beta1, double beta2, int n_threads);


/* The dispatched entry points above (function pointers set by nnf_isa_select in
 * isa.h; they start at the baseline build). */
#define NNF_OPTIM_FUNCS(X) \
    X(nnf_sgd_f32) \
    X(nnf_sgd_f64) \
    X(nnf_momentum_f32) \
    X(nnf_momentum_f64) \
    X(nnf_nesterov_f32) \
    X(nnf_nesterov_f64) \
    X(nnf_adagrad_f32) \
    X(nnf_adagrad_f64) \
    X(nnf_rmsprop_f32) \
    X(nnf_rmsprop_f64) \
    X(nnf_adam_f32) \
    X(nnf_adam_f64)

#endif
