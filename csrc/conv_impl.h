/* conv_impl.h - dtype-generic bodies of conv.c, included once per type with T (element
 * type) and SFX (name suffix). The epilogue adds in T; db accumulates in double. */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(name, SFX)

/* One task per (image, tile of positions): the output blocks never overlap. */
int NNF_FN(nnf_conv_bias_nchw_)(const T *NNF_RESTRICT rows, const T *NNF_RESTRICT b,
                                nnf_index N, nnf_index FN, nnf_index P, T *NNF_RESTRICT out,
                                int n_threads)
{
    if (N < 0 || FN < 0 || P < 0) return NNF_EINVAL;
    const nnf_index tiles = (P + NNF_CONV_TILE - 1) / NNF_CONV_TILE;
    const nnf_index tasks = N * tiles;
    const int parallel = n_threads > 1 && N * FN * P >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index t = 0; t < tasks; ++t) {
        const nnf_index n = t / tiles;
        const nnf_index p0 = (t % tiles) * NNF_CONV_TILE;
        const nnf_index p1 = p0 + NNF_CONV_TILE < P ? p0 + NNF_CONV_TILE : P;
        const T *src = rows + n * P * FN;
        T *dst = out + n * FN * P;
        for (nnf_index f = 0; f < FN; ++f) {
            const T bias = b[f];
            T *d = dst + f * P;
            for (nnf_index p = p0; p < p1; ++p) d[p] = src[p * FN + f] + bias;
        }
    }
    return NNF_OK;
}

/* One task per (image, filter) plane. */
int NNF_FN(nnf_conv_bias_planar_)(T *NNF_RESTRICT out, const T *NNF_RESTRICT b, nnf_index N,
                                  nnf_index FN, nnf_index P, int n_threads)
{
    if (N < 0 || FN < 0 || P < 0) return NNF_EINVAL;
    const nnf_index tasks = N * FN;
    const int parallel = n_threads > 1 && tasks > 1 && tasks * P >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index t = 0; t < tasks; ++t) {
        const T bias = b[t % FN];
        T *d = out + t * P;
        for (nnf_index p = 0; p < P; ++p) d[p] += bias;
    }
    return NNF_OK;
}

/* One task per image: it owns rows[n*P : (n+1)*P] and partial[n*FN : (n+1)*FN]. */
int NNF_FN(nnf_conv_bwd_rows_db_)(const T *NNF_RESTRICT dout, nnf_index N, nnf_index FN,
                                  nnf_index P, T *NNF_RESTRICT rows, T *NNF_RESTRICT db,
                                  double *NNF_RESTRICT partial, int n_threads)
{
    if (N < 0 || FN < 0 || P < 0) return NNF_EINVAL;
    const int parallel = n_threads > 1 && N > 1 && N * FN * P >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index n = 0; n < N; ++n) {
        const T *src = dout + n * FN * P;
        double *acc = partial + n * FN;
        for (nnf_index f = 0; f < FN; ++f) acc[f] = 0.0;
        if (rows == NULL) {
            for (nnf_index f = 0; f < FN; ++f) acc[f] = NNF_FN(nnf_sum_)(src + f * P, P);
            continue;
        }
        T *dst = rows + n * P * FN;
        for (nnf_index p0 = 0; p0 < P; p0 += NNF_CONV_TILE) {
            const nnf_index p1 = p0 + NNF_CONV_TILE < P ? p0 + NNF_CONV_TILE : P;
            for (nnf_index f = 0; f < FN; ++f) {
                const T *s = src + f * P;
                acc[f] += NNF_FN(nnf_sum_)(s + p0, p1 - p0);
                for (nnf_index p = p0; p < p1; ++p) dst[p * FN + f] = s[p];
            }
        }
    }
    NNF_FN(nnf_db_from_partials_)(partial, N, FN, db);
    return NNF_OK;
}

#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
