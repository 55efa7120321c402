/* batchnorm_avx2.c - batchnorm_build.h built for AVX2; chosen at run time (isa.h). */
#if defined(NNF_DCONV_X86) && defined(__AVX2__)
#define NNF_ISA_TAG _avx2
#include "batchnorm_build.h"
NNF_ISA_INSTALLER(batchnorm, NNF_BATCHNORM_FUNCS)
#else
typedef int nnf_batchnorm_avx2_unused; /* this compiler/target does not build the avx2 path */
#endif
