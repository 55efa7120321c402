/* softmax_xent_impl.h - dtype-generic bodies of softmax_xent.c (T, SFX, LOG_T).
 * Accumulation: the row max in T; the row sum of exponentials in double over 8 interleaved
 * accumulators and the loss over rows in double, sequentially, for both types (float32 then
 * agrees with NumPy's pairwise float32 sums to a few ulp). */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(NNF_CAT(name, SFX), NNF_ISA_TAG)

static inline void NNF_FN(nnf_shift_row_)(const T *NNF_RESTRICT x, nnf_index cols,
                                          T *NNF_RESTRICT y)
{
    /* select-based max (vectorises); a NaN anywhere is remembered and wins, as np.max */
    T m = x[0];
    int nan = 0;
    for (nnf_index c = 0; c < cols; ++c) {
        const T v = x[c];
        m = v > m ? v : m;
        nan |= v != v;
    }
    if (nan) m = (T)NAN;
    for (nnf_index c = 0; c < cols; ++c) y[c] = x[c] - m;
}

/* e[r, :] /= sum(e[r, :]): the sum over 8 interleaved double accumulators (fixed order,
 * independent of the thread count), rounded to T once. */
static inline void NNF_FN(nnf_normalize_row_)(T *NNF_RESTRICT e, nnf_index cols)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    nnf_index c = 0;
    for (; c + 8 <= cols; c += 8)
        for (int k = 0; k < 8; ++k) acc[k] += (double)e[c + k];
    double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; c < cols; ++c) sum += (double)e[c];
    const T s = (T)sum;
    for (c = 0; c < cols; ++c) e[c] = e[c] / s;
}

#define NNF_ROWS_PARALLEL (n_threads > 1 && rows > 1 && rows * cols >= NNF_PARALLEL_MIN_WORK)

void NNF_FN(nnf_softmax_shift_)(const T *NNF_RESTRICT x, nnf_index rows, nnf_index cols,
                                T *NNF_RESTRICT y, int n_threads)
{
    const int parallel = NNF_ROWS_PARALLEL;
    (void)parallel;
    if (cols < 1) return;
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index r = 0; r < rows; ++r)
        NNF_FN(nnf_shift_row_)(x + r * cols, cols, y + r * cols);
}

void NNF_FN(nnf_softmax_finish_)(T *NNF_RESTRICT e, nnf_index rows, nnf_index cols,
                                 int n_threads)
{
    const int parallel = NNF_ROWS_PARALLEL;
    (void)parallel;
    if (cols < 1) return;
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index r = 0; r < rows; ++r) NNF_FN(nnf_normalize_row_)(e + r * cols, cols);
}

/* dx for one row from y: (y - t) / n, or y minus 1 at the label, / n (the reference's order). */
static inline void NNF_FN(nnf_xent_grad_row_)(const T *NNF_RESTRICT y, nnf_index cols,
                                              int64_t label, const T *NNF_RESTRICT t, T n,
                                              T *NNF_RESTRICT dx)
{
    if (t) {
        for (nnf_index c = 0; c < cols; ++c) dx[c] = (y[c] - t[c]) / n;
    } else {
        for (nnf_index c = 0; c < cols; ++c) dx[c] = y[c] / n;
        dx[label] = (y[label] - (T)1) / n;
    }
}

int NNF_FN(nnf_softmax_xent_)(T *NNF_RESTRICT e, nnf_index rows, nnf_index cols,
                              const int64_t *NNF_RESTRICT labels, const T *NNF_RESTRICT t,
                              T *NNF_RESTRICT dx, double *NNF_RESTRICT row_loss, double *loss,
                              int n_threads)
{
    if (rows < 0 || cols < 1 || !nnf_labels_ok(labels, rows, cols)) return NNF_EINVAL;
    const int parallel = NNF_ROWS_PARALLEL;
    const T n = (T)rows, eps = (T)NNF_CE_EPS;
    (void)parallel;
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index r = 0; r < rows; ++r) {
        T *yr = e + r * cols;
        NNF_FN(nnf_normalize_row_)(yr, cols);
        row_loss[r] = (double)LOG_T(yr[labels[r]] + eps);
        if (dx)
            NNF_FN(nnf_xent_grad_row_)(yr, cols, labels[r], t ? t + r * cols : NULL, n,
                                       dx + r * cols);
    }
    double sum = 0.0;
    for (nnf_index r = 0; r < rows; ++r) sum += row_loss[r];
    *loss = -sum / (double)rows;
    return NNF_OK;
}

int NNF_FN(nnf_softmax_xent_bwd_)(const T *NNF_RESTRICT y, nnf_index rows, nnf_index cols,
                                  const int64_t *NNF_RESTRICT labels, const T *NNF_RESTRICT t,
                                  T *NNF_RESTRICT dx, int n_threads)
{
    if (rows < 0 || cols < 1) return NNF_EINVAL;
    if (!t && !nnf_labels_ok(labels, rows, cols)) return NNF_EINVAL;
    const int parallel = NNF_ROWS_PARALLEL;
    const T n = (T)rows;
    (void)parallel;
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index r = 0; r < rows; ++r)
        NNF_FN(nnf_xent_grad_row_)(y + r * cols, cols, t ? 0 : labels[r],
                                   t ? t + r * cols : NULL, n, dx + r * cols);
    return NNF_OK;
}

int NNF_FN(nnf_cross_entropy_)(const T *NNF_RESTRICT y, nnf_index rows, nnf_index cols,
                               const int64_t *NNF_RESTRICT labels, double *loss)
{
    if (rows < 0 || cols < 1 || !nnf_labels_ok(labels, rows, cols)) return NNF_EINVAL;
    const T eps = (T)NNF_CE_EPS;
    double sum = 0.0;
    for (nnf_index r = 0; r < rows; ++r) sum += (double)LOG_T(y[r * cols + labels[r]] + eps);
    *loss = -sum / (double)rows;
    return NNF_OK;
}

#undef NNF_ROWS_PARALLEL
#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
