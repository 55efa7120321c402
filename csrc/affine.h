/* affine.h - the non-GEMM pass of the Affine layer (the GEMM is numpy.matmul).
 * out is (rows, cols) C-contiguous; b is (cols,). */
#ifndef NNFAST_AFFINE_H
#define NNFAST_AFFINE_H

#include "common.h"
#include "isa.h"

/* out[r, c] += b[c]   (in place, after out = x @ W: the reference's x @ W + b). */
extern void (*nnf_bias_add_f32)(float *out, const float *b, nnf_index rows, nnf_index cols, int n_threads);
extern void (*nnf_bias_add_f64)(double *out, const double *b, nnf_index rows, nnf_index cols, int n_threads);


/* The dispatched entry points above (function pointers set by nnf_isa_select in
 * isa.h; they start at the baseline build). */
#define NNF_AFFINE_FUNCS(X) \
    X(nnf_bias_add_f32) \
    X(nnf_bias_add_f64)

#endif
