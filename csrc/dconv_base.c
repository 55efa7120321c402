/* dconv_base.c - dconv_impl.h built for base: 16-byte vectors, register block FB x VB.
 * Selected at run time by dconv.c. */
#include "dconv_isa.h"

#if 1 /* the portable baseline: always built */
#define VBYTES 16
#define FB 4
#define VB 2
#define DFB 4
#define DJ 3
#define ISA base
#define DC_REG(v) "x"(v) /* the register class of a vector */

#include "dconv_build.h"
#else
typedef int nnf_dconv_base_unused; /* this compiler/target does not build the base path */
#endif
