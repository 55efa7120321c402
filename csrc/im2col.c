/* im2col.c - im2col and its adjoint col2im, float and double.
 * x is (N, C, H, W) C-contiguous; col is (N*OH*OW, C*FH*FW), rows (n, oh, ow),
 * columns (c, i, j). Parallel over independent outputs: col rows / x planes. */
#include "im2col.h"

nnf_index nnf_conv_out_size(nnf_index in, nnf_index f, nnf_index stride, nnf_index pad)
{
    /* pad > (INT64_MAX - in) / 2 would overflow in + 2*pad: no such input exists */
    if (in < 0 || f < 1 || stride < 1 || pad < 0 || pad > (INT64_MAX - in) / 2) return -1;
    if (in + 2 * pad < f) return -1;
    return (in + 2 * pad - f) / stride + 1;
}

#define T float
#define SFX f32
#include "im2col_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "im2col_impl.h"
#undef T
#undef SFX
