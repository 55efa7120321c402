/* softmax_xent_impl.h - dtype-generic bodies of the softmax_xent family (T, IT, SFX, LOG_T and
 * the EXP_* constants of softmax_xent_build.h; built once per ISA, see isa.h).
 * One pass per row, all of it in C: the row max, y = exp(x - max) with the row sum, then
 * y / sum, the row's loss and its gradient; the rows are split over the threads (outputs
 * never overlap), in one parallel region per call.
 * Accumulation: the row max in T (exact, in any order); the row sum of exponentials in double
 * over 8 interleaved accumulators and the loss over rows in double, sequentially, for both
 * types (float32 then agrees with NumPy's pairwise float32 sums to a few ulp). Every build
 * forms the same operations in the same order, so all of them give the same bits. */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(NNF_CAT(name, SFX), NNF_ISA_TAG)

/* exp(z) for z <= 0 and NaN (softmax's shifted scores; z > 0 is clamped at 88 / 709, which
 * softmax never reaches). Cody-Waite reduction z = k ln2 + r, |r| <= ln2/2, with k rounded by
 * the shifter; exp(r) by its Taylor polynomial to degree EXP_DEGREE (7 for float, 13 for
 * double: truncation below 2^-24 / 2^-53 relative), coefficients 1/d! rounded to T, Horner's
 * rule, no FMA; then the two
 * halves of 2^k as exact power-of-two factors, so that results down to the subnormals are
 * rounded once. Within 2 ulp of the exact value (tested against NumPy's exp); plain C
 * arithmetic, so it vectorises on every build and gives the same bits on all of them. */
static inline T NNF_FN(nnf_exp_nonpos_)(T z)
{
    const T hi = (T)(EXP_BIAS == 127 ? 88.0 : 709.0);
    T zc = z > EXP_LO ? z : EXP_LO; /* NaN -> EXP_LO here; the NaN comes back at the end */
    zc = zc < hi ? zc : hi;
    const T kf = (zc * (T)1.44269504088896340736 + EXP_SHIFTER) - EXP_SHIFTER;
    const T r = (zc - kf * LN2_HI) - kf * LN2_LO;
    T p = (T)nnf_inv_factorial[EXP_DEGREE];
    for (int d = EXP_DEGREE - 1; d >= 0; --d) p = p * r + (T)nnf_inv_factorial[d];
    const int32_t k = (int32_t)kf, k1 = k / 2, k2 = k - k1; /* |k| < 1100: int32 converts on every ISA */
    const IT b1 = (IT)(k1 + EXP_BIAS) << EXP_MANT, b2 = (IT)(k2 + EXP_BIAS) << EXP_MANT;
    T s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    const T e = (p * s1) * s2;
    return z != z ? z : e;
}

/* The lanes of the row max: independent running maxima (a serial max is one long chain). */
#define NNF_MAX_LANES 16

/* y = exp(x - max(x)) for one row; returns sum(y) (8 interleaved double accumulators, added
 * in a fixed order). NaN: np.max would make the max, and so the row, NaN; here the max
 * skips NaNs, but a NaN (or an inf - inf) in the row makes the sum NaN, and the caller then
 * fills the row with NaN: the same result. Separate simple loops (the vectoriser's shapes). */
static inline double NNF_FN(nnf_exp_row_)(const T *NNF_RESTRICT x, nnf_index cols,
                                          T *NNF_RESTRICT y)
{
    T lane[NNF_MAX_LANES];
    for (int l = 0; l < NNF_MAX_LANES; ++l) lane[l] = x[0];
    nnf_index c = 0;
    for (; c + NNF_MAX_LANES <= cols; c += NNF_MAX_LANES)
        for (int l = 0; l < NNF_MAX_LANES; ++l)
            lane[l] = x[c + l] > lane[l] ? x[c + l] : lane[l];
    T m = lane[0];
    for (int l = 1; l < NNF_MAX_LANES; ++l) m = lane[l] > m ? lane[l] : m;
    for (; c < cols; ++c) m = x[c] > m ? x[c] : m;
    for (c = 0; c < cols; ++c) y[c] = NNF_FN(nnf_exp_nonpos_)(x[c] - m);
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    c = 0;
    for (; c + 8 <= cols; c += 8)
        for (int k = 0; k < 8; ++k) acc[k] += (double)y[c + k];
    double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; c < cols; ++c) sum += (double)y[c];
    return sum;
}

/* y = e / s for one row (softmax's last step), or NaN everywhere when the sum is NaN */
static inline void NNF_FN(nnf_normalize_row_)(T *NNF_RESTRICT y, nnf_index cols, double sum)
{
    const T s = (T)sum;
    if (sum != sum) {
        for (nnf_index c = 0; c < cols; ++c) y[c] = (T)NAN;
        return;
    }
    for (nnf_index c = 0; c < cols; ++c) y[c] = y[c] / s;
}

#define NNF_ROWS_PARALLEL (n_threads > 1 && rows > 1 && rows * cols >= NNF_PARALLEL_MIN_WORK)

void NNF_FN(nnf_softmax_)(const T *NNF_RESTRICT x, nnf_index rows, nnf_index cols,
                          T *NNF_RESTRICT y, int n_threads)
{
    const int parallel = NNF_ROWS_PARALLEL;
    (void)parallel;
    if (cols < 1) return;
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index r = 0; r < rows; ++r) {
        T *yr = y + r * cols;
        NNF_FN(nnf_normalize_row_)(yr, cols, NNF_FN(nnf_exp_row_)(x + r * cols, cols, yr));
    }
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

int NNF_FN(nnf_softmax_xent_)(const T *NNF_RESTRICT x, nnf_index rows, nnf_index cols,
                              const int64_t *NNF_RESTRICT labels, const T *NNF_RESTRICT t,
                              T *NNF_RESTRICT y, T *NNF_RESTRICT dx,
                              double *NNF_RESTRICT row_loss, double *loss, int n_threads)
{
    if (rows < 0 || cols < 1 || !nnf_labels_ok(labels, rows, cols)) return NNF_EINVAL;
    const int parallel = NNF_ROWS_PARALLEL;
    const T n = (T)rows, eps = (T)NNF_CE_EPS;
    (void)parallel;
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index r = 0; r < rows; ++r) {
        T *yr = y + r * cols;
        NNF_FN(nnf_normalize_row_)(yr, cols, NNF_FN(nnf_exp_row_)(x + r * cols, cols, yr));
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

#undef NNF_MAX_LANES
#undef NNF_ROWS_PARALLEL
#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
