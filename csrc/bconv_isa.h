/* bconv_isa.h - the per-instruction-set builds of bconv_impl.h, for bconv.c only. */
#ifndef NNFAST_BCONV_ISA_H
#define NNFAST_BCONV_ISA_H

#include "bconv.h"
#include "dconv.h" /* the ISA levels */

#define NNF_BCONV_DECLARE(T, SFX, ISA)                                                       \
    int nnf_bconv_fwd_##SFX##_##ISA(const T *x, nnf_index N, nnf_index C, nnf_index H,      \
                                    nnf_index W, const T *w, nnf_index F, nnf_index KH,      \
                                    nnf_index KW, nnf_index sh, nnf_index sw, nnf_index ph,  \
                                    nnf_index pw, const T *bias, T *out, uint8_t *relu_mask, \
                                    T *scratch, int n_threads);                              \
    int nnf_bconv_dw_##SFX##_##ISA(const T *x, nnf_index N, nnf_index C, nnf_index H,       \
                                   nnf_index W, const T *dout, nnf_index F, nnf_index KH,    \
                                   nnf_index KW, nnf_index sh, nnf_index sw, nnf_index ph,   \
                                   nnf_index pw, T *dw, T *db, T *scratch, int n_threads);

NNF_BCONV_DECLARE(float, f32, base)
NNF_BCONV_DECLARE(double, f64, base)
#ifdef NNF_DCONV_X86
NNF_BCONV_DECLARE(float, f32, avx2)
NNF_BCONV_DECLARE(double, f64, avx2)
NNF_BCONV_DECLARE(float, f32, avx512)
NNF_BCONV_DECLARE(double, f64, avx512)
#endif

#endif
