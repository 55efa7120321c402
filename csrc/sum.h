/* sum.h - the reductions the bias gradients share: sum of a[0..n) in double, in 8 interleaved
 * partial sums (independent dependency chains: a single running sum is bound by the add
 * latency, ~4x slower), then added in a fixed order. The same order everywhere, so a db
 * computed by any kernel is the same to the last bit. */
#ifndef NNFAST_SUM_H
#define NNFAST_SUM_H

#include "common.h"

#define NNF_DEFINE_SUM(T, SFX)                                                     \
    static inline double nnf_sum_##SFX(const T *NNF_RESTRICT a, nnf_index n)       \
    {                                                                              \
        double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                    \
        nnf_index p = 0;                                                           \
        for (; p + 8 <= n; p += 8)                                                 \
            for (int l = 0; l < 8; ++l) s[l] += (double)a[p + l];                  \
        for (int l = 0; p < n; ++p, ++l) s[l] += (double)a[p];                     \
        return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); \
    }                                                                              \
    /* db[f] = the per-image sums partial[n*F + f] added over n in order (double) */ \
    static inline void nnf_db_from_partials_##SFX(const double *NNF_RESTRICT partial, \
                                                 nnf_index N, nnf_index F,         \
                                                 T *NNF_RESTRICT db)               \
    {                                                                              \
        for (nnf_index f = 0; f < F; ++f) {                                        \
            double s = 0.0;                                                        \
            for (nnf_index n = 0; n < N; ++n) s += partial[n * F + f];             \
            db[f] = (T)s;                                                          \
        }                                                                          \
    }
NNF_DEFINE_SUM(float, f32)
NNF_DEFINE_SUM(double, f64)
#undef NNF_DEFINE_SUM

#endif
