/* dconv_avx2.c - dconv_impl.h built for avx2: 32-byte vectors, register block FB x VB.
 * Selected at run time by dconv.c. */
#include "dconv_isa.h"

#if NNF_HAVE_VECTOR_EXT && defined(__AVX2__) && defined(__FMA__)
#define VBYTES 32
#define FB 4
#define VB 3
#define DFB 4
#define DJ 3
#define ISA avx2
#define DC_REG(v) "x"(v) /* the register class of a vector */

#include "dconv_build.h"
#else
typedef int nnf_dconv_avx2_unused; /* this compiler/target does not build the avx2 path */
#endif
