/* batchnorm_avx512.c - batchnorm_build.h built for AVX512; chosen at run time (isa.h). */
#if defined(NNF_DCONV_X86) && defined(__AVX512F__) && defined(__AVX512BW__)
#define NNF_ISA_TAG _avx512
#include "batchnorm_build.h"
NNF_ISA_INSTALLER(batchnorm, NNF_BATCHNORM_FUNCS)
#else
typedef int nnf_batchnorm_avx512_unused; /* this compiler/target does not build the avx512 path */
#endif
