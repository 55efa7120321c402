/* softmax_xent_avx512.c - softmax_xent_build.h built for AVX512; chosen at run time (isa.h). */
#if defined(NNF_DCONV_X86) && defined(__AVX512F__) && defined(__AVX512BW__)
#define NNF_ISA_TAG _avx512
#include "softmax_xent_build.h"
NNF_ISA_INSTALLER(softmax_xent, NNF_SOFTMAX_XENT_FUNCS)
#else
typedef int nnf_softmax_xent_avx512_unused; /* this compiler/target does not build the avx512 path */
#endif
