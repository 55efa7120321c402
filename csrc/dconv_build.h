/* dconv_build.h - builds dconv_impl.h for float and double; included once by each
 * dconv_<isa>.c after it has defined VBYTES, FB, VB, DFB, DJ, ISA and DC_REG. */
#define T float
#define SFX f32
#include "dconv_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "dconv_impl.h"
#undef T
#undef SFX
