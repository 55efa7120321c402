/* conv.c - convolution epilogue (bias + (N*P, FN) -> (N, FN, P)) and its adjoint with the
 * db reduction, float and double. rows (N*P, FN) row-major; out/dout (N, FN, P), P = OH*OW. */
#include <stddef.h>

#include "conv.h"
#include "sum.h"

/* Positions per transposition tile: a tile of rows (TILE*FN values) stays in L1. */
#define NNF_CONV_TILE 64

#define T float
#define SFX f32
#include "conv_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "conv_impl.h"
#undef T
#undef SFX
