/* eltwise_avx2.c - eltwise_build.h built for AVX2; chosen at run time (isa.h). */
#if defined(NNF_DCONV_X86) && defined(__AVX2__)
#define NNF_ISA_TAG _avx2
#include "eltwise_build.h"
NNF_ISA_INSTALLER(eltwise, NNF_ELTWISE_FUNCS)
#else
typedef int nnf_eltwise_avx2_unused; /* this compiler/target does not build the avx2 path */
#endif
