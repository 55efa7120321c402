/* im2col_impl.h - dtype-generic bodies of im2col.c, included once per type
 * with T (element type) and SFX (name suffix) defined. No accumulation in
 * im2col; col2im accumulates in T, in the reference's (i, j) order. */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(name, SFX)

int NNF_FN(nnf_im2col_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C,
                        nnf_index H, nnf_index W, nnf_index FH, nnf_index FW,
                        nnf_index stride, nnf_index pad, T *NNF_RESTRICT col,
                        int n_threads)
{
    const nnf_index OH = nnf_conv_out_size(H, FH, stride, pad);
    const nnf_index OW = nnf_conv_out_size(W, FW, stride, pad);
    if (N < 0 || C < 0 || OH < 0 || OW < 0) return NNF_EINVAL;
    const nnf_index K = C * FH * FW;
    const nnf_index rows = N * OH; /* one task per (n, oh): OW rows of col */
    const int parallel = n_threads > 1 && rows * OW * K >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index r = 0; r < rows; ++r) {
        const nnf_index n = r / OH, oh = r % OH;
        T *dst = col + r * OW * K;
        for (nnf_index ow = 0; ow < OW; ++ow) {
            const nnf_index w0 = ow * stride - pad;
            const int inside = w0 >= 0 && w0 + FW <= W; /* no column of the window is padding */
            for (nnf_index c = 0; c < C; ++c) {
                const T *plane = x + (n * C + c) * H * W;
                for (nnf_index i = 0; i < FH; ++i) {
                    const nnf_index h = oh * stride - pad + i;
                    if (h < 0 || h >= H) {
                        for (nnf_index j = 0; j < FW; ++j) dst[j] = (T)0;
                    } else if (inside) { /* the common case: a plain copy, unrolled for 3 and 5 */
                        const T *src = plane + h * W + w0;
                        if (FW == 3) {
                            dst[0] = src[0]; dst[1] = src[1]; dst[2] = src[2];
                        } else if (FW == 5) {
                            dst[0] = src[0]; dst[1] = src[1]; dst[2] = src[2];
                            dst[3] = src[3]; dst[4] = src[4];
                        } else {
                            for (nnf_index j = 0; j < FW; ++j) dst[j] = src[j];
                        }
                    } else {
                        const T *src = plane + h * W;
                        for (nnf_index j = 0; j < FW; ++j) {
                            const nnf_index w = w0 + j;
                            dst[j] = (w >= 0 && w < W) ? src[w] : (T)0;
                        }
                    }
                    dst += FW;
                }
            }
        }
    }
    return NNF_OK;
}

/* Valid output range [*lo, *hi) of o such that o*stride - pad + k lies in [0, n). */
static inline void NNF_FN(nnf_valid_range_)(nnf_index n, nnf_index k, nnf_index stride,
                                            nnf_index pad, nnf_index out, nnf_index *lo,
                                            nnf_index *hi)
{
    nnf_index a = pad - k; /* need o*stride >= a */
    /* ceil(a / stride) without forming a + stride - 1 (it overflows for huge strides) */
    nnf_index first = a <= 0 ? 0 : (a - 1) / stride + 1;
    nnf_index b = n - 1 + pad - k; /* need o*stride <= b */
    nnf_index last = b < 0 ? -1 : b / stride;
    if (last > out - 1) last = out - 1;
    *lo = first;
    *hi = last + 1 > first ? last + 1 : first;
}

/* Each (n, c) plane of x is owned by one thread: zero it, then add the col
 * entries in (i, j) order - the reference's order, so results are bit-equal. */
int NNF_FN(nnf_col2im_)(const T *NNF_RESTRICT col, nnf_index N, nnf_index C,
                        nnf_index H, nnf_index W, nnf_index FH, nnf_index FW,
                        nnf_index stride, nnf_index pad, T *NNF_RESTRICT x,
                        int n_threads)
{
    const nnf_index OH = nnf_conv_out_size(H, FH, stride, pad);
    const nnf_index OW = nnf_conv_out_size(W, FW, stride, pad);
    if (N < 0 || C < 0 || OH < 0 || OW < 0) return NNF_EINVAL;
    const nnf_index K = C * FH * FW;
    const nnf_index planes = N * C;
    const int parallel = n_threads > 1 && planes * OH * OW * FH * FW >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index p = 0; p < planes; ++p) {
        const nnf_index n = p / C, c = p % C;
        const T *colc = col + n * OH * OW * K + c * FH * FW;
        T *out = x + p * H * W;
        for (nnf_index k = 0; k < H * W; ++k) out[k] = (T)0;
        for (nnf_index i = 0; i < FH; ++i) {
            nnf_index oh0, oh1;
            NNF_FN(nnf_valid_range_)(H, i, stride, pad, OH, &oh0, &oh1);
            for (nnf_index j = 0; j < FW; ++j) {
                nnf_index ow0, ow1;
                NNF_FN(nnf_valid_range_)(W, j, stride, pad, OW, &ow0, &ow1);
                const T *src = colc + i * FW + j;
                for (nnf_index oh = oh0; oh < oh1; ++oh) {
                    /* index arithmetic, not pointers: base may be < 0 before ow0 */
                    const nnf_index base = (oh * stride - pad + i) * W - pad + j;
                    const T *s = src + oh * OW * K;
                    for (nnf_index ow = ow0; ow < ow1; ++ow)
                        out[base + ow * stride] += s[ow * K];
                }
            }
        }
    }
    return NNF_OK;
}

#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
