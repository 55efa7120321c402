/* affine.c - bias add after the Affine GEMM, float and double.
 * out is (rows, cols) C-contiguous, b is (cols,); parallel over rows. No accumulation. */
#include "affine.h"

#define NNF_AFFINE_BODY(T)                                                             \
    const int parallel = n_threads > 1 && rows * cols >= 4 * NNF_PARALLEL_MIN_WORK;    \
    (void)parallel;                                                                    \
    _Pragma("omp parallel for schedule(static) num_threads(n_threads) if(parallel)")   \
    for (nnf_index r = 0; r < rows; ++r) {                                             \
        T *NNF_RESTRICT o = out + r * cols;                                            \
        for (nnf_index c = 0; c < cols; ++c) o[c] = o[c] + b[c];                       \
    }

void nnf_bias_add_f32(float *NNF_RESTRICT out, const float *NNF_RESTRICT b, nnf_index rows,
                      nnf_index cols, int n_threads)
{
    NNF_AFFINE_BODY(float)
}

void nnf_bias_add_f64(double *NNF_RESTRICT out, const double *NNF_RESTRICT b, nnf_index rows,
                      nnf_index cols, int n_threads)
{
    NNF_AFFINE_BODY(double)
}
