/* batchnorm.h - batch normalization forward (train/test) and backward, float and double.
 * x is (N, C, I) C-contiguous, normalised per channel c over (n, i): I = 1 is the reference's
 * per-feature mode on (N, D); I = H*W is the per-channel (spatial) mode on (N, C, H, W). */
#ifndef NNFAST_BATCHNORM_H
#define NNFAST_BATCHNORM_H

#include "common.h"
#include "isa.h"

/* Added to the variance before the square root (the reference writes it 10e-7). */
#define NNF_BN_EPS 1e-6

/* With M = N*I values per channel: mu = sum(x)/M; xc = x - mu; var = sum(xc*xc)/M;
 * std = sqrt(var + eps); xn = xc / std; out = gamma*xn + beta;
 * rm_out = momentum*rm_in + (1 - momentum)*mu, rv_out likewise with var (new arrays).
 * xn may be NULL: it is then not stored (nnf_bn_bwd forms it again from xc and std). */
extern int (*nnf_bn_fwd_train_f32)(const float *x, nnf_index N, nnf_index C, nnf_index I,
                                   const float *gamma, const float *beta, const float *rm_in,
                                   const float *rv_in, double momentum, float *out, float *xc, float *xn,
                                   float *std, float *rm_out, float *rv_out, int n_threads);
extern int (*nnf_bn_fwd_train_f64)(const double *x, nnf_index N, nnf_index C, nnf_index I,
                                   const double *gamma, const double *beta, const double *rm_in,
                                   const double *rv_in, double momentum, double *out, double *xc,
                                   double *xn, double *std, double *rm_out, double *rv_out, int n_threads);

/* out = gamma * ((x - rm) / sqrt(rv + eps)) + beta. */
extern int (*nnf_bn_fwd_test_f32)(const float *x, nnf_index N, nnf_index C, nnf_index I,
                                  const float *gamma, const float *beta, const float *rm, const float *rv,
                                  float *out, int n_threads);
extern int (*nnf_bn_fwd_test_f64)(const double *x, nnf_index N, nnf_index C, nnf_index I,
                                  const double *gamma, const double *beta, const double *rm,
                                  const double *rv, double *out, int n_threads);

/* dbeta = sum(dout); dgamma = sum(xn*dout); dxn = gamma*dout;
 * dvar = 0.5 * -sum(dxn*xc / (std*std)) / std; dxc = dxn/std + (2/M)*xc*dvar;
 * dx = dxc - sum(dxc)/M   (sums over the M = N*I values of each channel).
 * xn may be NULL: xc/std is then used, the same values the forward would have stored. */
extern int (*nnf_bn_bwd_f32)(const float *dout, const float *xc, const float *xn, const float *std,
                             const float *gamma, nnf_index N, nnf_index C, nnf_index I, float *dx,
                             float *dgamma, float *dbeta, int n_threads);
extern int (*nnf_bn_bwd_f64)(const double *dout, const double *xc, const double *xn, const double *std,
                             const double *gamma, nnf_index N, nnf_index C, nnf_index I, double *dx,
                             double *dgamma, double *dbeta, int n_threads);


/* The dispatched entry points above (function pointers set by nnf_isa_select in
 * isa.h; they start at the baseline build). */
#define NNF_BATCHNORM_FUNCS(X) \
    X(nnf_bn_fwd_train_f32) \
    X(nnf_bn_fwd_train_f64) \
    X(nnf_bn_fwd_test_f32) \
    X(nnf_bn_fwd_test_f64) \
    X(nnf_bn_bwd_f32) \
    X(nnf_bn_bwd_f64)

#endif
