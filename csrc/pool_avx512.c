/* pool_avx512.c - pool_build.h built for AVX512; chosen at run time (isa.h). */
#if defined(NNF_DCONV_X86) && defined(__AVX512F__) && defined(__AVX512BW__)
#define NNF_ISA_TAG _avx512
#include "pool_build.h"
NNF_ISA_INSTALLER(pool, NNF_POOL_FUNCS)
#else
typedef int nnf_pool_avx512_unused; /* this compiler/target does not build the avx512 path */
#endif
