/* softmax_xent_build.h - the bodies of the softmax_xent family, built once per instruction set
 * by softmax_xent_base.c, softmax_xent_avx2.c and softmax_xent_avx512.c (NNF_ISA_TAG names the build).
 * row softmax and fused softmax + cross-entropy, float and double.
 * (rows, cols) C-contiguous, one sample per row; parallel over rows (outputs never overlap). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "softmax_xent.h"
#include "isa_build.h"

static int nnf_labels_ok(const int64_t *labels, nnf_index rows, nnf_index cols)
{
    for (nnf_index r = 0; r < rows; ++r)
        if (labels[r] < 0 || labels[r] >= cols) return 0;
    return 1;
}

/* 1/d! for d = 0..13: the exponential's Taylor coefficients (rounded to T where used) */
static const double nnf_inv_factorial[14] = {
    1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};

/* The exponential's constants per type (see nnf_exp_nonpos_ in softmax_xent_impl.h):
 * EXP_LO clamps the argument below the point where exp rounds to 0; EXP_SHIFTER = 1.5 * 2^m
 * (m mantissa bits) rounds to an integer by adding and subtracting; LN2_HI has trailing zero
 * bits, so k * LN2_HI is exact; EXP_BIAS / EXP_MANT place an exponent in a float's bits. */
#define T float
#define IT int32_t
#define SFX f32
#define LOG_T logf
#define EXP_LO (-104.0f)
#define EXP_SHIFTER 12582912.0f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EXP_BIAS 127
#define EXP_MANT 23
#define EXP_DEGREE 7
#include "softmax_xent_impl.h"
#undef T
#undef IT
#undef SFX
#undef LOG_T
#undef EXP_LO
#undef EXP_SHIFTER
#undef LN2_HI
#undef LN2_LO
#undef EXP_BIAS
#undef EXP_MANT
#undef EXP_DEGREE

#define T double
#define IT int64_t
#define SFX f64
#define LOG_T log
#define EXP_LO (-746.0)
#define EXP_SHIFTER 6755399441055744.0
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define EXP_BIAS 1023
#define EXP_MANT 52
#define EXP_DEGREE 13
#include "softmax_xent_impl.h"
#undef T
#undef IT
#undef SFX
#undef LOG_T
#undef EXP_LO
#undef EXP_SHIFTER
#undef LN2_HI
#undef LN2_LO
#undef EXP_BIAS
#undef EXP_MANT
#undef EXP_DEGREE
