/* im2col_impl.h - dtype-generic bodies of im2col.c, included once per type
 * with T (element type) and SFX (name suffix) defined. No accumulation in
 * im2col; col2im accumulates in T, in the reference's (i, j) order. */

#define NNF_CAT2(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT2(a, b)
#define NNF_FN(name) NNF_CAT(name, SFX)

/* Columns [*lo, *hi) of output positions whose whole window row lies inside [0, W):
 * ow*stride - pad >= 0 and ow*stride - pad + FW <= W. */
static inline void NNF_FN(nnf_inside_range_)(nnf_index W, nnf_index FW, nnf_index stride,
                                             nnf_index pad, nnf_index OW, nnf_index *lo,
                                             nnf_index *hi)
{
    /* ceil(pad / stride) without forming pad + stride - 1 (it overflows for huge strides) */
    nnf_index first = pad <= 0 ? 0 : (pad - 1) / stride + 1;
    nnf_index last = W - FW + pad < 0 ? -1 : (W - FW + pad) / stride; /* inclusive */
    if (first > OW) first = OW;
    if (last > OW - 1) last = OW - 1;
    *lo = first;
    *hi = last + 1 > first ? last + 1 : first;
}

/* Copy FW elements; the usual filter widths get constant-length copies. */
static inline void NNF_FN(nnf_copy_fw_)(T *NNF_RESTRICT d, const T *NNF_RESTRICT s, nnf_index FW)
{
    switch (FW) {
    case 1: d[0] = s[0]; break;
    case 2: d[0] = s[0]; d[1] = s[1]; break;
    case 3: d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; break;
    case 5: d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = s[3]; d[4] = s[4]; break;
    default: for (nnf_index j = 0; j < FW; ++j) d[j] = s[j];
    }
}

/* One task per (n, oh): its OW rows of col form an (OW, K) block. The block is filled one
 * (c, i) segment column at a time, so each inner loop is a run of fixed-width copies
 * (source advancing by stride, destination by K) with every bounds test hoisted out. */
int NNF_FN(nnf_im2col_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C,
                        nnf_index H, nnf_index W, nnf_index FH, nnf_index FW,
                        nnf_index stride, nnf_index pad, T *NNF_RESTRICT col,
                        int n_threads)
{
    const nnf_index OH = nnf_conv_out_size(H, FH, stride, pad);
    const nnf_index OW = nnf_conv_out_size(W, FW, stride, pad);
    if (N < 0 || C < 0 || OH < 0 || OW < 0) return NNF_EINVAL;
    const nnf_index K = C * FH * FW;
    const nnf_index rows = N * OH;
    const int parallel = n_threads > 1 && rows * OW * K >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;
    nnf_index lo, hi;
    NNF_FN(nnf_inside_range_)(W, FW, stride, pad, OW, &lo, &hi);

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index r = 0; r < rows; ++r) {
        const nnf_index n = r / OH, oh = r % OH;
        T *blk = col + r * OW * K;
        for (nnf_index c = 0; c < C; ++c) {
            const T *plane = x + (n * C + c) * H * W;
            for (nnf_index i = 0; i < FH; ++i) {
                T *dst = blk + (c * FH + i) * FW;
                const nnf_index h = oh * stride - pad + i;
                if (h < 0 || h >= H) {
                    for (nnf_index ow = 0; ow < OW; ++ow)
                        for (nnf_index j = 0; j < FW; ++j) dst[ow * K + j] = (T)0;
                    continue;
                }
                const T *src = plane + h * W;
                for (nnf_index ow = 0; ow < OW; ++ow) {
                    if (ow == lo) { /* the run of windows inside the row */
                        for (; ow < hi; ++ow)
                            NNF_FN(nnf_copy_fw_)(dst + ow * K, src + ow * stride - pad, FW);
                        if (ow >= OW) break;
                    }
                    const nnf_index w0 = ow * stride - pad;
                    for (nnf_index j = 0; j < FW; ++j) {
                        const nnf_index w = w0 + j;
                        dst[ow * K + j] = (w >= 0 && w < W) ? src[w] : (T)0;
                    }
                }
            }
        }
    }
    return NNF_OK;
}

/* One image of col2im: dx_n (C, H, W) = 0, then every window row of col (K contiguous
 * entries, read in order) is added into its (c, i, j) positions, windows visited in
 * descending (oh, ow) order: each x element then receives its terms in ascending (i, j)
 * order, the order in which the reference's col2im adds them, so results are bit-equal.
 * Inlined with FW a constant at each call site below, so the usual widths unroll. */
NNF_ALWAYS_INLINE void NNF_FN(nnf_col2im_image_)(
    const T *NNF_RESTRICT coln, nnf_index C, nnf_index H, nnf_index W, nnf_index FH,
    const nnf_index FW, nnf_index stride, nnf_index pad, nnf_index OH, nnf_index OW,
    nnf_index lo, nnf_index hi, T *NNF_RESTRICT out)
{
    const nnf_index K = C * FH * FW;
    for (nnf_index k = 0; k < C * H * W; ++k) out[k] = (T)0;
    for (nnf_index oh = OH - 1; oh >= 0; --oh) {
        for (nnf_index ow = OW - 1; ow >= 0; --ow) {
            const T *row = coln + (oh * OW + ow) * K;
            const nnf_index w0 = ow * stride - pad;
            const int inside = ow >= lo && ow < hi;
            for (nnf_index c = 0; c < C; ++c) {
                T *plane = out + c * H * W;
                for (nnf_index i = 0; i < FH; ++i) {
                    const nnf_index h = oh * stride - pad + i;
                    const T *s = row + (c * FH + i) * FW;
                    if (h < 0 || h >= H) continue;
                    if (inside) {
                        T *d = plane + h * W + w0;
                        for (nnf_index j = 0; j < FW; ++j) d[j] += s[j];
                    } else {
                        for (nnf_index j = 0; j < FW; ++j) {
                            const nnf_index w = w0 + j;
                            if (w >= 0 && w < W) plane[h * W + w] += s[j];
                        }
                    }
                }
            }
        }
    }
}

/* One task per image: reads of col are sequential, the image's dx stays in cache. */
int NNF_FN(nnf_col2im_)(const T *NNF_RESTRICT col, nnf_index N, nnf_index C,
                        nnf_index H, nnf_index W, nnf_index FH, nnf_index FW,
                        nnf_index stride, nnf_index pad, T *NNF_RESTRICT x,
                        int n_threads)
{
    const nnf_index OH = nnf_conv_out_size(H, FH, stride, pad);
    const nnf_index OW = nnf_conv_out_size(W, FW, stride, pad);
    if (N < 0 || C < 0 || OH < 0 || OW < 0) return NNF_EINVAL;
    const nnf_index K = C * FH * FW;
    const int parallel = n_threads > 1 && N > 1 && N * OH * OW * K >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;
    nnf_index lo, hi;
    NNF_FN(nnf_inside_range_)(W, FW, stride, pad, OW, &lo, &hi);

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index n = 0; n < N; ++n) {
        const T *coln = col + n * OH * OW * K;
        T *out = x + n * C * H * W;
        switch (FW) {
        case 1: NNF_FN(nnf_col2im_image_)(coln, C, H, W, FH, 1, stride, pad, OH, OW, lo, hi, out); break;
        case 2: NNF_FN(nnf_col2im_image_)(coln, C, H, W, FH, 2, stride, pad, OH, OW, lo, hi, out); break;
        case 3: NNF_FN(nnf_col2im_image_)(coln, C, H, W, FH, 3, stride, pad, OH, OW, lo, hi, out); break;
        case 5: NNF_FN(nnf_col2im_image_)(coln, C, H, W, FH, 5, stride, pad, OH, OW, lo, hi, out); break;
        default: NNF_FN(nnf_col2im_image_)(coln, C, H, W, FH, FW, stride, pad, OH, OW, lo, hi, out);
        }
    }
    return NNF_OK;
}

/* Output columns [*lo, *hi) whose tap j lands inside [0, W): 0 <= ow*stride - pad + j < W. */
static inline void NNF_FN(nnf_tap_range_)(nnf_index W, nnf_index j, nnf_index stride,
                                          nnf_index pad, nnf_index OW, nnf_index *lo,
                                          nnf_index *hi)
{
    const nnf_index first_w = pad - j; /* ow*stride >= pad - j */
    nnf_index first = first_w <= 0 ? 0 : (first_w - 1) / stride + 1;
    const nnf_index last_w = W - 1 + pad - j; /* ow*stride <= W - 1 + pad - j */
    nnf_index last = last_w < 0 ? -1 : last_w / stride;
    if (first > OW) first = OW;
    if (last > OW - 1) last = OW - 1;
    *lo = first;
    *hi = last + 1 > first ? last + 1 : first;
}

/* One task per (n, c): it writes the FH*FW rows (each P long) of that channel. Each row is
 * OH runs of OW entries: zeros outside the image, a strided (for stride 1: contiguous)
 * copy inside, so the inner loop is a plain copy with no bounds test. */
int NNF_FN(nnf_im2col_planar_)(const T *NNF_RESTRICT x, nnf_index N, nnf_index C,
                               nnf_index H, nnf_index W, nnf_index FH, nnf_index FW,
                               nnf_index stride, nnf_index pad, T *NNF_RESTRICT colp,
                               int n_threads)
{
    const nnf_index OH = nnf_conv_out_size(H, FH, stride, pad);
    const nnf_index OW = nnf_conv_out_size(W, FW, stride, pad);
    if (N < 0 || C < 0 || OH < 0 || OW < 0) return NNF_EINVAL;
    const nnf_index P = OH * OW, KK = FH * FW;
    const nnf_index tasks = N * C;
    const int parallel = n_threads > 1 && tasks > 1 && tasks * KK * P >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index t = 0; t < tasks; ++t) {
        const T *plane = x + t * H * W;
        T *rows = colp + t * KK * P; /* (n, c) -> rows (c*KK .. c*KK+KK) of image n */
        for (nnf_index i = 0; i < FH; ++i) {
            for (nnf_index j = 0; j < FW; ++j) {
                T *dst = rows + (i * FW + j) * P;
                nnf_index lo, hi;
                NNF_FN(nnf_tap_range_)(W, j, stride, pad, OW, &lo, &hi);
                for (nnf_index oh = 0; oh < OH; ++oh, dst += OW) {
                    const nnf_index h = oh * stride - pad + i;
                    if (h < 0 || h >= H) {
                        for (nnf_index ow = 0; ow < OW; ++ow) dst[ow] = (T)0;
                        continue;
                    }
                    for (nnf_index ow = 0; ow < lo; ++ow) dst[ow] = (T)0;
                    if (lo < hi) {
                        const T *src = plane + h * W + (lo * stride - pad + j); /* ow = lo */
                        if (stride == 1) {
                            for (nnf_index ow = lo; ow < hi; ++ow) dst[ow] = src[ow - lo];
                        } else {
                            for (nnf_index ow = lo; ow < hi; ++ow)
                                dst[ow] = src[(ow - lo) * stride];
                        }
                    }
                    for (nnf_index ow = hi; ow < OW; ++ow) dst[ow] = (T)0;
                }
            }
        }
    }
    return NNF_OK;
}

/* One task per (n, c) plane of x: zeroed, then the plane's FH*FW rows of colp are added
 * in (i, j) order, so each element receives its terms in the reference's order. */
int NNF_FN(nnf_col2im_planar_)(const T *NNF_RESTRICT colp, nnf_index N, nnf_index C,
                               nnf_index H, nnf_index W, nnf_index FH, nnf_index FW,
                               nnf_index stride, nnf_index pad, T *NNF_RESTRICT x,
                               int n_threads)
{
    const nnf_index OH = nnf_conv_out_size(H, FH, stride, pad);
    const nnf_index OW = nnf_conv_out_size(W, FW, stride, pad);
    if (N < 0 || C < 0 || OH < 0 || OW < 0) return NNF_EINVAL;
    const nnf_index P = OH * OW, KK = FH * FW;
    const nnf_index tasks = N * C;
    const int parallel = n_threads > 1 && tasks > 1 && tasks * KK * P >= NNF_PARALLEL_MIN_WORK;
    (void)parallel;

#pragma omp parallel for schedule(static) num_threads(n_threads) if(parallel)
    for (nnf_index t = 0; t < tasks; ++t) {
        T *plane = x + t * H * W;
        const T *rows = colp + t * KK * P;
        for (nnf_index k = 0; k < H * W; ++k) plane[k] = (T)0;
        for (nnf_index i = 0; i < FH; ++i) {
            for (nnf_index j = 0; j < FW; ++j) {
                const T *src = rows + (i * FW + j) * P;
                nnf_index lo, hi;
                NNF_FN(nnf_tap_range_)(W, j, stride, pad, OW, &lo, &hi);
                for (nnf_index oh = 0; oh < OH; ++oh, src += OW) {
                    const nnf_index h = oh * stride - pad + i;
                    if (h < 0 || h >= H) continue;
                    if (lo >= hi) continue;
                    T *dst = plane + h * W + (lo * stride - pad + j); /* ow = lo */
                    if (stride == 1) {
                        for (nnf_index ow = lo; ow < hi; ++ow) dst[ow - lo] += src[ow];
                    } else {
                        for (nnf_index ow = lo; ow < hi; ++ow) dst[(ow - lo) * stride] += src[ow];
                    }
                }
            }
        }
    }
    return NNF_OK;
}

#undef NNF_FN
#undef NNF_CAT
#undef NNF_CAT2
