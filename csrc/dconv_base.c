/* dconv_base.c - dconv_impl.h built for base: 16-byte vectors, register block FB x VB.
 * Selected at run time by dconv.c. */
#include "dconv_isa.h"

#if NNF_HAVE_VECTOR_EXT /* the portable baseline: built wherever vector extensions are */
#define VBYTES 16
#define FB 4
#define VB 2
#define DFB 4
#define DJ 3
#define ISA base
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
#define DC_REG(v) "x"(v) /* the register class of a vector (SSE / AArch64 NEON v0-v15) */
#endif

#include "dconv_build.h"
#else
typedef int nnf_dconv_base_unused; /* this compiler/target does not build the base path */
#endif
