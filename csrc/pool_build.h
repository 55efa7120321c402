/* pool_build.h - the bodies of the pool family, built once per instruction set
 * by pool_base.c, pool_avx2.c and pool_avx512.c (NNF_ISA_TAG names the build).
 * max/avg pooling forward (max records argmax) and backward (scatter), float and double.
 * x, dx (N, C, H, W); out, dout, argmax (N, C, OH, OW); one (n, c) plane per task. */
#include <math.h>
#include <string.h>

#include "im2col.h"
#include "pool.h"
#include "isa_build.h"

/* The window helper must inline so that the 2x2 call unrolls with constant bounds. */
#if defined(__GNUC__) || defined(__clang__)
#define NNF_POOL_INLINE static inline __attribute__((always_inline))
#else
#define NNF_POOL_INLINE static inline
#endif

/* Index of the lowest set bit of a non-zero 4-bit mask, without a branch (the masks
 * are random: a branch on them mispredicts). */
static inline int nnf_lowest_bit(unsigned mask)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(mask);
#else
    static const signed char lowest[16] = {0, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0};
    return lowest[mask & 15u];
#endif
}

#define T float
#define U uint32_t
#define SFX f32
#define ACC double
#include "pool_impl.h"
#undef T
#undef U
#undef SFX
#undef ACC

#define T double
#define U uint64_t
#define SFX f64
#define ACC double
#include "pool_impl.h"
#undef T
#undef U
#undef SFX
#undef ACC
