/* affine_build.h - the bodies of the affine family, built once per instruction set
 * by affine_base.c, affine_avx2.c and affine_avx512.c (NNF_ISA_TAG names the build).
 * bias add after the Affine GEMM, float and double.
 * out is (rows, cols) C-contiguous, b is (cols,); parallel over rows. No accumulation. */
#include "affine.h"
#include "isa_build.h"

#define NNF_AFFINE_BODY(T)                                                             \
    const int parallel = n_threads > 1 && rows * cols >= 4 * NNF_PARALLEL_MIN_WORK;    \
    (void)parallel;                                                                    \
    if (parallel) {                                                                    \
        _Pragma("omp parallel for schedule(static) num_threads(n_threads)")            \
        for (nnf_index r = 0; r < rows; ++r) {                                         \
            T *NNF_RESTRICT o = out + r * cols;                                        \
            for (nnf_index c = 0; c < cols; ++c) o[c] = o[c] + b[c];                   \
        }                                                                              \
    } else { /* no OpenMP region at all for a serial call (~1 us saved) */             \
        for (nnf_index r = 0; r < rows; ++r) {                                         \
            T *NNF_RESTRICT o = out + r * cols;                                        \
            for (nnf_index c = 0; c < cols; ++c) o[c] = o[c] + b[c];                   \
        }                                                                              \
    }

void NNF_ISA_CAT(nnf_bias_add_f32, NNF_ISA_TAG)(float *NNF_RESTRICT out,
                                                const float *NNF_RESTRICT b, nnf_index rows,
                                                nnf_index cols, int n_threads)
{
    NNF_AFFINE_BODY(float)
}

void NNF_ISA_CAT(nnf_bias_add_f64, NNF_ISA_TAG)(double *NNF_RESTRICT out,
                                                const double *NNF_RESTRICT b, nnf_index rows,
                                                nnf_index cols, int n_threads)
{
    NNF_AFFINE_BODY(double)
}
