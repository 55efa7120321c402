/* dconv_build.h - builds dconv_impl.h for float and double; included once by each
 * dconv_<isa>.c after it has defined VBYTES, FB, VB, DFB, DJ, ISA and DC_REG. IT is the
 * signed integer type of T's width. */
#define T float
#define IT int32_t
#define SFX f32
#include "dconv_impl.h"
#undef T
#undef IT
#undef SFX

#define T double
#define IT int64_t
#define SFX f64
#include "dconv_impl.h"
#undef T
#undef IT
#undef SFX
