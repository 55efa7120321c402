/* bconv_base.c - bconv_impl.h built for the portable baseline: 16-byte vectors, and the
 * multiply-add as C's fma() per lane (the same single rounding as the FMA instructions
 * of the vector builds, so every build gives the same bits; slow without hardware FMA).
 * Selected at run time by bconv.c. */
#include <math.h>

#include "bconv_isa.h"

#if NNF_HAVE_VECTOR_EXT /* (MSVC: no vector extensions, no direct convolutions) */
#define VBYTES 16
#define MAXACC 12
#define FVMAX 2
#define ISA base
#define BC_MADD(a, b, x)                                                                   \
    do {                                                                                   \
        for (int bc_l_ = 0; bc_l_ < (int)(VBYTES / sizeof(T)); ++bc_l_)                    \
            (a)[bc_l_] = sizeof(T) == sizeof(float) ? (T)fmaf((float)(b)[bc_l_], (float)(x), \
                                                              (float)(a)[bc_l_])             \
                                                    : (T)fma((double)(b)[bc_l_], (double)(x), \
                                                             (double)(a)[bc_l_]);            \
    } while (0)

#include "bconv_build.h"
#else
typedef int nnf_bconv_base_unused; /* this compiler does not build the base path */
#endif
