/* eltwise_impl.h - dtype-generic bodies of eltwise.c, included once per type with
 * T and SFX defined. No accumulation: every output element is one expression in T. */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(NNF_CAT(name, SFX), NNF_ISA_TAG)
/* the loop over i (isa_build.h): parallel only for large n */
#define NNF_EW_FOR(...) NNF_FOR_I(n >= NNF_ELTWISE_MIN_PARALLEL && n_threads > 1, __VA_ARGS__)

void NNF_FN(nnf_relu_)(const T *NNF_RESTRICT x, nnf_index n, T *NNF_RESTRICT out, int n_threads)
{
    (void)n_threads;
    NNF_EW_FOR({ const T v = x[i]; out[i] = v < (T)0 ? (T)0 : v; });
}

void NNF_FN(nnf_relu_fwd_)(const T *NNF_RESTRICT x, nnf_index n, T *NNF_RESTRICT out,
                           uint8_t *NNF_RESTRICT mask, int n_threads)
{
    (void)n_threads;
    /* two loops over the same (cached) range: each has one element type and vectorises */
    NNF_EW_FOR({ const T v = x[i]; out[i] = v <= (T)0 ? (T)0 : v; });
    NNF_EW_FOR({ mask[i] = (uint8_t)(x[i] <= (T)0); });
}

void NNF_FN(nnf_relu_bwd_)(const T *NNF_RESTRICT dout, const uint8_t *NNF_RESTRICT mask,
                           nnf_index n, T *NNF_RESTRICT dx, int n_threads)
{
    (void)n_threads;
    /* loads before the select: no control flow, so the loop vectorises */
    NNF_EW_FOR({ const T d = dout[i]; dx[i] = mask[i] ? (T)0 : d; });
}

void NNF_FN(nnf_positive_)(const T *NNF_RESTRICT x, nnf_index n, int inclusive,
                           T *NNF_RESTRICT out, int n_threads)
{
    (void)n_threads;
    if (inclusive) {
        NNF_EW_FOR({ const T v = x[i]; out[i] = v >= (T)0 ? (T)1 : (T)0; });
    } else {
        NNF_EW_FOR({ const T v = x[i]; out[i] = v > (T)0 ? (T)1 : (T)0; });
    }
}

void NNF_FN(nnf_step_)(const T *NNF_RESTRICT x, nnf_index n, int64_t *NNF_RESTRICT out,
                       int n_threads)
{
    (void)n_threads;
    NNF_EW_FOR({ out[i] = x[i] > (T)0; });
}

void NNF_FN(nnf_neg_abs_)(const T *NNF_RESTRICT x, nnf_index n, T *NNF_RESTRICT out,
                          int n_threads)
{
    (void)n_threads;
    NNF_EW_FOR({ const T v = x[i]; out[i] = v < (T)0 ? v : -v; });
}

/* e = exp(-|x|) from NumPy (its SIMD exp, the reference's own): the rest of the
 * reference's stable form, e in (0, 1] so nothing overflows. */
void NNF_FN(nnf_sigmoid_finish_)(const T *NNF_RESTRICT x, const T *e, nnf_index n, int derivative,
                                 T *out, int n_threads)
{
    (void)n_threads;
    if (derivative) {
        NNF_EW_FOR({
            const T ei = e[i], d = (T)1 + ei;
            const T s = (x[i] >= (T)0 ? (T)1 : ei) / d; /* 1/d or e/d: one division */
            out[i] = ((T)1 - s) * s;
        });
    } else {
        NNF_EW_FOR({
            const T ei = e[i], d = (T)1 + ei;
            out[i] = (x[i] >= (T)0 ? (T)1 : ei) / d; /* 1/d or e/d: one division */
        });
    }
}

void NNF_FN(nnf_sigmoid_bwd_)(const T *NNF_RESTRICT dout, const T *NNF_RESTRICT y, nnf_index n,
                              T *NNF_RESTRICT dx, int n_threads)
{
    (void)n_threads;
    NNF_EW_FOR({ dx[i] = dout[i] * ((T)1 - y[i]) * y[i]; });
}

void NNF_FN(nnf_mul_mask_)(const T *NNF_RESTRICT a, const uint8_t *NNF_RESTRICT mask,
                           nnf_index n, T *NNF_RESTRICT out, int n_threads)
{
    (void)n_threads;
    NNF_EW_FOR({ out[i] = a[i] * (T)mask[i]; });
}

void NNF_FN(nnf_scale_)(const T *NNF_RESTRICT a, double s, nnf_index n, T *NNF_RESTRICT out,
                        int n_threads)
{
    const T st = (T)s;
    (void)n_threads;
    NNF_EW_FOR({ out[i] = a[i] * st; });
}

#undef NNF_EW_FOR
#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
