/* dconv_avx512.c - dconv_impl.h built for avx512: 64-byte vectors, register block FB x VB.
 * Selected at run time by dconv.c. */
#include "dconv_isa.h"

#if NNF_HAVE_VECTOR_EXT && defined(__AVX512F__)
#define VBYTES 64
#define FB 6
#define VB 4
#define DFB 4
#define DJ 5
#define ISA avx512
#define DC_REG(v) "v"(v) /* the register class of a vector */

#include "dconv_build.h"
#else
typedef int nnf_dconv_avx512_unused; /* this compiler/target does not build the avx512 path */
#endif
