/* batchnorm_impl.h - dtype-generic bodies of batchnorm.c (T, SFX, SQRT_T).
 * Accumulation: every per-channel sum is in T, over n then i in ascending order - the order
 * of NumPy's axis-0 reduction in the reference - so results match it bit for bit, whatever the
 * thread count (a channel never spans two threads). */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(NNF_CAT(name, SFX), NNF_ISA_TAG)

/* Channels per task: whole rows of features (I == 1) vectorise across channels;
 * with I > 1 one channel per task is enough work. */
#define NNF_BN_BLOCK 256

static inline nnf_index NNF_FN(nnf_bn_block_)(nnf_index I)
{
    return I == 1 ? NNF_BN_BLOCK : 1;
}

/* acc[c - c0] = sum over n, i of a[n, c, i] (or of a*b when b != NULL), in T, for c0 <= c < c1. */
static inline void NNF_FN(nnf_bn_sum_)(const T *NNF_RESTRICT a, const T *NNF_RESTRICT b,
                                       nnf_index N, nnf_index C, nnf_index I, nnf_index c0,
                                       nnf_index c1, T *NNF_RESTRICT acc)
{
    for (nnf_index c = c0; c < c1; ++c) acc[c - c0] = (T)0;
    for (nnf_index n = 0; n < N; ++n) {
        if (I == 1) {
            const T *ar = a + n * C;
            if (b) {
                const T *br = b + n * C;
                for (nnf_index c = c0; c < c1; ++c) acc[c - c0] = acc[c - c0] + ar[c] * br[c];
            } else {
                for (nnf_index c = c0; c < c1; ++c) acc[c - c0] = acc[c - c0] + ar[c];
            }
        } else {
            for (nnf_index c = c0; c < c1; ++c) {
                const T *ar = a + (n * C + c) * I;
                T s = acc[c - c0];
                if (b) {
                    const T *br = b + (n * C + c) * I;
                    for (nnf_index i = 0; i < I; ++i) s = s + ar[i] * br[i];
                } else {
                    for (nnf_index i = 0; i < I; ++i) s = s + ar[i];
                }
                acc[c - c0] = s;
            }
        }
    }
}

/* The per-element passes below come in two shapes: I == 1 (per feature: a row of the
 * block at a time, channel parameters vary along it - vectorises) and I > 1 (per channel:
 * runs of I values sharing one channel's parameters). */

int NNF_FN(nnf_bn_fwd_train_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index I,
                              const T *NNF_RESTRICT gamma, const T *NNF_RESTRICT beta,
                              const T *NNF_RESTRICT rm_in, const T *NNF_RESTRICT rv_in,
                              double momentum, T *NNF_RESTRICT out, T *NNF_RESTRICT xc,
                              T *NNF_RESTRICT xn, T *NNF_RESTRICT std, T *NNF_RESTRICT rm_out,
                              T *NNF_RESTRICT rv_out, int n_threads)
{
    if (N < 1 || C < 0 || I < 1) return NNF_EINVAL;
    const nnf_index B = NNF_FN(nnf_bn_block_)(I);
    const nnf_index blocks = (C + B - 1) / B;
    const T M = (T)(N * I), eps = (T)NNF_BN_EPS;
    const T mom = (T)momentum, omm = (T)(1.0 - momentum);
    const int parallel = n_threads > 1 && blocks > 1 && N * C * I >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index blk = 0; blk < blocks; ++blk) {
        const nnf_index c0 = blk * B, c1 = c0 + B < C ? c0 + B : C, w = c1 - c0;
        T mu[NNF_BN_BLOCK], var[NNF_BN_BLOCK], inv[NNF_BN_BLOCK];
        NNF_FN(nnf_bn_sum_)(x, NULL, N, C, I, c0, c1, mu);
        for (nnf_index k = 0; k < w; ++k) mu[k] = mu[k] / M;
        /* xc = x - mu, kept for backward; then var = sum(xc*xc)/M */
        for (nnf_index n = 0; n < N; ++n) {
            if (I == 1) {
                const T *xr = x + n * C + c0;
                T *cr = xc + n * C + c0;
                for (nnf_index k = 0; k < w; ++k) cr[k] = xr[k] - mu[k];
            } else {
                for (nnf_index c = c0; c < c1; ++c) {
                    const nnf_index base = (n * C + c) * I;
                    const T m = mu[c - c0];
                    for (nnf_index i = 0; i < I; ++i) xc[base + i] = x[base + i] - m;
                }
            }
        }
        NNF_FN(nnf_bn_sum_)(xc, xc, N, C, I, c0, c1, var);
        for (nnf_index c = c0; c < c1; ++c) {
            const T v = var[c - c0] / M;
            std[c] = SQRT_T(v + eps);
            inv[c - c0] = std[c];
            rm_out[c] = mom * rm_in[c] + omm * mu[c - c0];
            rv_out[c] = mom * rv_in[c] + omm * v;
        }
        /* xn = xc / std; out = gamma*xn + beta */
        for (nnf_index n = 0; n < N; ++n) {
            if (I == 1) {
                const T *cr = xc + n * C + c0;
                T *nr = xn + n * C + c0, *orow = out + n * C + c0;
                const T *g = gamma + c0, *b = beta + c0;
                for (nnf_index k = 0; k < w; ++k) {
                    const T v = cr[k] / inv[k];
                    nr[k] = v;
                    orow[k] = g[k] * v + b[k];
                }
            } else {
                for (nnf_index c = c0; c < c1; ++c) {
                    const nnf_index base = (n * C + c) * I;
                    const T s = std[c], g = gamma[c], b = beta[c];
                    for (nnf_index i = 0; i < I; ++i) {
                        const T v = xc[base + i] / s;
                        xn[base + i] = v;
                        out[base + i] = g * v + b;
                    }
                }
            }
        }
    }
    return NNF_OK;
}

int NNF_FN(nnf_bn_fwd_test_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C, nnf_index I,
                             const T *NNF_RESTRICT gamma, const T *NNF_RESTRICT beta,
                             const T *NNF_RESTRICT rm, const T *NNF_RESTRICT rv,
                             T *NNF_RESTRICT out, int n_threads)
{
    if (N < 0 || C < 0 || I < 1) return NNF_EINVAL;
    const T eps = (T)NNF_BN_EPS;
    const int parallel = n_threads > 1 && N > 1 && N * C * I >= 4 * NNF_PARALLEL_MIN_WORK;
    (void)parallel;
#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index n = 0; n < N; ++n)
        for (nnf_index c = 0; c < C; ++c) {
            const nnf_index base = (n * C + c) * I;
            const T s = SQRT_T(rv[c] + eps), m = rm[c], g = gamma[c], b = beta[c];
            for (nnf_index i = 0; i < I; ++i) out[base + i] = g * ((x[base + i] - m) / s) + b;
        }
    return NNF_OK;
}

int NNF_FN(nnf_bn_bwd_)(const T *NNF_RESTRICT dout, const T *NNF_RESTRICT xc,
                        const T *NNF_RESTRICT xn, const T *NNF_RESTRICT std,
                        const T *NNF_RESTRICT gamma, nnf_index N, nnf_index C, nnf_index I,
                        T *NNF_RESTRICT dx, T *NNF_RESTRICT dgamma, T *NNF_RESTRICT dbeta,
                        int n_threads)
{
    if (N < 1 || C < 0 || I < 1) return NNF_EINVAL;
    const nnf_index B = NNF_FN(nnf_bn_block_)(I);
    const nnf_index blocks = (C + B - 1) / B;
    const nnf_index Mi = N * I;
    const T M = (T)Mi, two_over_m = (T)(2.0 / (double)Mi), half = (T)0.5;
    const int parallel = n_threads > 1 && blocks > 1 && N * C * I >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index blk = 0; blk < blocks; ++blk) {
        const nnf_index c0 = blk * B, c1 = c0 + B < C ? c0 + B : C, w = c1 - c0;
        T dstd[NNF_BN_BLOCK], dvar[NNF_BN_BLOCK], dmu[NNF_BN_BLOCK], ss[NNF_BN_BLOCK];
        const T *g = gamma + c0, *sd = std + c0;
        NNF_FN(nnf_bn_sum_)(dout, NULL, N, C, I, c0, c1, dbeta + c0);
        NNF_FN(nnf_bn_sum_)(xn, dout, N, C, I, c0, c1, dgamma + c0);
        /* dstd = -sum((gamma*dout) * xc / (std*std)) */
        for (nnf_index k = 0; k < w; ++k) { dstd[k] = (T)0; ss[k] = sd[k] * sd[k]; }
        for (nnf_index n = 0; n < N; ++n) {
            if (I == 1) {
                const T *dr = dout + n * C + c0, *cr = xc + n * C + c0;
                for (nnf_index k = 0; k < w; ++k) dstd[k] = dstd[k] + (g[k] * dr[k]) * cr[k] / ss[k];
            } else {
                for (nnf_index k = 0; k < w; ++k) {
                    const nnf_index base = (n * C + c0 + k) * I;
                    const T gk = g[k], sk = ss[k];
                    T s = dstd[k];
                    for (nnf_index i = 0; i < I; ++i) s = s + (gk * dout[base + i]) * xc[base + i] / sk;
                    dstd[k] = s;
                }
            }
        }
        for (nnf_index k = 0; k < w; ++k) {
            dvar[k] = half * -dstd[k] / sd[k];
            dmu[k] = (T)0;
        }
        /* dxc = (gamma*dout)/std + ((2/M)*xc)*dvar, stored in dx; dmu = sum(dxc) */
        for (nnf_index n = 0; n < N; ++n) {
            if (I == 1) {
                const T *dr = dout + n * C + c0, *cr = xc + n * C + c0;
                T *xr = dx + n * C + c0;
                for (nnf_index k = 0; k < w; ++k) {
                    const T v = (g[k] * dr[k]) / sd[k] + (two_over_m * cr[k]) * dvar[k];
                    xr[k] = v;
                    dmu[k] = dmu[k] + v;
                }
            } else {
                for (nnf_index k = 0; k < w; ++k) {
                    const nnf_index base = (n * C + c0 + k) * I;
                    const T gk = g[k], s = sd[k], dv = dvar[k];
                    T acc = dmu[k];
                    for (nnf_index i = 0; i < I; ++i) {
                        const T v = (gk * dout[base + i]) / s + (two_over_m * xc[base + i]) * dv;
                        dx[base + i] = v;
                        acc = acc + v;
                    }
                    dmu[k] = acc;
                }
            }
        }
        for (nnf_index k = 0; k < w; ++k) dmu[k] = dmu[k] / M;
        for (nnf_index n = 0; n < N; ++n) {
            if (I == 1) {
                T *xr = dx + n * C + c0;
                for (nnf_index k = 0; k < w; ++k) xr[k] = xr[k] - dmu[k];
            } else {
                for (nnf_index k = 0; k < w; ++k) {
                    const nnf_index base = (n * C + c0 + k) * I;
                    const T d = dmu[k];
                    for (nnf_index i = 0; i < I; ++i) dx[base + i] = dx[base + i] - d;
                }
            }
        }
    }
    return NNF_OK;
}

#undef NNF_BN_BLOCK
#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
