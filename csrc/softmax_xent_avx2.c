/* softmax_xent_avx2.c - softmax_xent_build.h built for AVX2; chosen at run time (isa.h). */
#if defined(NNF_DCONV_X86) && defined(__AVX2__)
#define NNF_ISA_TAG _avx2
#include "softmax_xent_build.h"
NNF_ISA_INSTALLER(softmax_xent, NNF_SOFTMAX_XENT_FUNCS)
#else
typedef int nnf_softmax_xent_avx2_unused; /* this compiler/target does not build the avx2 path */
#endif
