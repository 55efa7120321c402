/* pool.c - max/avg pooling forward (max records argmax) and backward (scatter), float and double.
 * x, dx (N, C, H, W); out, dout, argmax (N, C, OH, OW); one (n, c) plane per task. */
#include <math.h>

#include "im2col.h"
#include "pool.h"

#define T float
#define SFX f32
#define ACC double
#include "pool_impl.h"
#undef T
#undef SFX
#undef ACC

#define T double
#define SFX f64
#define ACC double
#include "pool_impl.h"
#undef T
#undef SFX
#undef ACC
