/* conv.h - the layout passes around a convolution's GEMMs: bias + NCHW epilogue, db reduction.
 * rows is the GEMM side (N*P, FN) row-major, rows ordered (n, p); out/dout are (N, FN, P)
 * with P = OH*OW, all C-contiguous. */
#ifndef NNFAST_CONV_H
#define NNFAST_CONV_H

#include "common.h"

/* out[n, f, p] = rows[n*P + p, f] + b[f]. */
int nnf_conv_bias_nchw_f32(const float *rows, const float *b, nnf_index N, nnf_index FN,
                           nnf_index P, float *out, int n_threads);
int nnf_conv_bias_nchw_f64(const double *rows, const double *b, nnf_index N, nnf_index FN,
                           nnf_index P, double *out, int n_threads);

/* out[n, f, p] += b[f] (the planar path: the GEMM wrote out directly). */
int nnf_conv_bias_planar_f32(float *out, const float *b, nnf_index N, nnf_index FN, nnf_index P,
                             int n_threads);
int nnf_conv_bias_planar_f64(double *out, const double *b, nnf_index N, nnf_index FN,
                             nnf_index P, int n_threads);

/* rows[n*P + p, f] = dout[n, f, p] (skipped when rows is NULL) and
 * db[f] = sum over n of (sum over p of dout[n, f, p]), summed in double, per image into
 * partial (N*FN doubles of caller scratch) then over n in order: the result does not
 * depend on n_threads. */
int nnf_conv_bwd_rows_db_f32(const float *dout, nnf_index N, nnf_index FN, nnf_index P,
                             float *rows, float *db, double *partial, int n_threads);
int nnf_conv_bwd_rows_db_f64(const double *dout, nnf_index N, nnf_index FN, nnf_index P,
                             double *rows, double *db, double *partial, int n_threads);

#endif
