/* optim_impl.h - dtype-generic bodies of optim.c (T, SFX, SQRT_T). No accumulation:
 * each element is updated with the reference's operations in its order, every operation
 * rounded to T (compiled with -ffp-contract=off, so no fused multiply-add changes a result). */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(NNF_CAT(name, SFX), NNF_ISA_TAG)
/* the loop over i (isa_build.h): parallel only for large n */
#define NNF_OPT_FOR(...) NNF_FOR_I(n >= NNF_OPTIM_MIN_PARALLEL && n_threads > 1, __VA_ARGS__)

void NNF_FN(nnf_sgd_)(T *NNF_RESTRICT p, const T *NNF_RESTRICT g, nnf_index n, double lr,
                      int n_threads)
{
    const T lr_ = (T)lr;
    (void)n_threads;
    NNF_OPT_FOR({ p[i] = p[i] - lr_ * g[i]; });
}

void NNF_FN(nnf_momentum_)(T *NNF_RESTRICT p, const T *NNF_RESTRICT g, T *NNF_RESTRICT v,
                           nnf_index n, double lr, double momentum, int n_threads)
{
    const T lr_ = (T)lr, mom = (T)momentum;
    (void)n_threads;
    NNF_OPT_FOR({
        const T vi = mom * v[i] - lr_ * g[i];
        v[i] = vi;
        p[i] = p[i] + vi;
    });
}

void NNF_FN(nnf_nesterov_)(T *NNF_RESTRICT p, const T *NNF_RESTRICT g, T *NNF_RESTRICT v,
                           nnf_index n, double lr, double momentum, int n_threads)
{
    /* Python evaluates momentum*momentum and (1 + momentum)*lr in double first. */
    const T lr_ = (T)lr, mom = (T)momentum, mm = (T)(momentum * momentum);
    const T step = (T)((1.0 + momentum) * lr);
    (void)n_threads;
    NNF_OPT_FOR({
        const T gi = g[i], vi = v[i];
        T pi = p[i] + mm * vi;
        p[i] = pi - step * gi;
        v[i] = vi * mom - lr_ * gi;
    });
}

void NNF_FN(nnf_adagrad_)(T *NNF_RESTRICT p, const T *NNF_RESTRICT g, T *NNF_RESTRICT h,
                          nnf_index n, double lr, int n_threads)
{
    const T lr_ = (T)lr, eps = (T)NNF_OPT_EPS;
    (void)n_threads;
    NNF_OPT_FOR({
        const T gi = g[i], hi = h[i] + gi * gi;
        h[i] = hi;
        p[i] = p[i] - lr_ * gi / (SQRT_T(hi) + eps);
    });
}

void NNF_FN(nnf_rmsprop_)(T *NNF_RESTRICT p, const T *NNF_RESTRICT g, T *NNF_RESTRICT h,
                          nnf_index n, double lr, double rho, int n_threads)
{
    const T lr_ = (T)lr, r = (T)rho, omr = (T)(1.0 - rho), eps = (T)NNF_OPT_EPS;
    (void)n_threads;
    NNF_OPT_FOR({
        const T gi = g[i];
        T hi = h[i] * r;
        hi = hi + omr * gi * gi;
        h[i] = hi;
        p[i] = p[i] - lr_ * gi / (SQRT_T(hi) + eps);
    });
}

void NNF_FN(nnf_adam_)(T *NNF_RESTRICT p, const T *NNF_RESTRICT g, T *NNF_RESTRICT m,
                       T *NNF_RESTRICT v, nnf_index n, double lr_t, double beta1, double beta2,
                       int n_threads)
{
    const T lr_ = (T)lr_t, omb1 = (T)(1.0 - beta1), omb2 = (T)(1.0 - beta2);
    const T eps = (T)NNF_OPT_EPS;
    (void)n_threads;
    NNF_OPT_FOR({
        const T gi = g[i];
        const T mi = m[i] + omb1 * (gi - m[i]);
        const T vi = v[i] + omb2 * (gi * gi - v[i]);
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - lr_ * mi / (SQRT_T(vi) + eps);
    });
}

#undef NNF_OPT_FOR
#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
