/* bconv_build.h - builds bconv_impl.h for float and double; included once by each
 * bconv_<isa>.c after it has defined VBYTES, MAXACC, FVMAX, ISA and BC_MADD. IT
 * is the signed integer type of T's width. */
#define T float
#define IT int32_t
#define SFX f32
#include "bconv_impl.h"
#undef T
#undef IT
#undef SFX

#define T double
#define IT int64_t
#define SFX f64
#include "bconv_impl.h"
#undef T
#undef IT
#undef SFX
