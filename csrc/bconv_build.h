/* bconv_build.h - builds bconv_impl.h for float and double; included once by each
 * bconv_<isa>.c after it has defined VBYTES, MAXACC, FVMAX, ISA and BC_MADD. */
#define T float
#define SFX f32
#include "bconv_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "bconv_impl.h"
#undef T
#undef SFX
