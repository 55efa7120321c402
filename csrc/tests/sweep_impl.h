/* sweep_impl.h - the dtype-generic body of test_sweep.c, included once per type with
 * T (element type) and SFX (name suffix). Every buffer is malloc'd at its exact size, so
 * under AddressSanitizer one element read or written past the end fails the run. */

#define SW_CAT2(a, b) a##b
#define SW_CAT(a, b) SW_CAT2(a, b)
#define SW(name) SW_CAT(name, SFX)

static T *SW(buf_)(nnf_index n, nnf_index seed)
{
    T *a = malloc(sizeof(T) * (size_t)(n > 0 ? n : 1));
    for (nnf_index k = 0; k < n; ++k) a[k] = (T)val(k + seed);
    return a;
}

/* im2col/col2im, max/avg pooling forward and backward for one geometry. */
static void SW(one_geometry_)(nnf_index N, nnf_index C, nnf_index H, nnf_index W, nnf_index FH,
                              nnf_index FW, nnf_index s, nnf_index pad, int threads)
{
    {
        const nnf_index OH = nnf_conv_out_size(H, FH, s, pad);
        const nnf_index OW = nnf_conv_out_size(W, FW, s, pad);
        T *x = SW(buf_)(N * C * H * W, 1);
        if (OH < 0 || OW < 0) { /* the window does not fit: refused, nothing touched */
            CHECK(SW(nnf_im2col_)(x, N, C, H, W, FH, FW, s, pad, NULL, threads) == NNF_EINVAL,
                  "im2col accepted a window that does not fit");
            CHECK(SW(nnf_im2col_planar_)(x, N, C, H, W, FH, FW, s, pad, NULL, threads)
                  == NNF_EINVAL, "im2col_planar accepted a window that does not fit");
            CHECK(SW(nnf_col2im_planar_)(x, N, C, H, W, FH, FW, s, pad, NULL, threads)
                  == NNF_EINVAL, "col2im_planar accepted a window that does not fit");
            CHECK(SW(nnf_maxpool_fwd_)(x, N, C, H, W, FH, FW, s, pad, NULL, NULL, threads)
                  == NNF_EINVAL, "maxpool accepted a window that does not fit");
            free(x);
            return;
        }
        const nnf_index rows = N * OH * OW, K = C * FH * FW, small = N * C * OH * OW;
        T *col = SW(buf_)(rows * K, 2), *c2 = SW(buf_)(rows * K, 3);
        T *back = SW(buf_)(N * C * H * W, 4);
        CHECK(SW(nnf_im2col_)(x, N, C, H, W, FH, FW, s, pad, col, threads) == NNF_OK, "im2col");
        CHECK(SW(nnf_col2im_)(c2, N, C, H, W, FH, FW, s, pad, back, threads) == NNF_OK, "col2im");
        /* adjoint: <im2col(x), c2> == <x, col2im(c2)> */
        double lhs = 0, rhs = 0, scale = 0;
        for (nnf_index k = 0; k < rows * K; ++k) {
            lhs += (double)col[k] * (double)c2[k];
            scale += fabs((double)col[k] * (double)c2[k]);
        }
        for (nnf_index k = 0; k < N * C * H * W; ++k) rhs += (double)x[k] * (double)back[k];
        CHECK(fabs(lhs - rhs) <= 1e-4 * (1 + scale), "col2im is not im2col's adjoint");

        /* planar pair: image n's (K, P) block is its rows of col transposed; col2im_planar
         * of c2 so transposed sums in the same order as col2im: equal to the last bit */
        const nnf_index P = OH * OW;
        T *colp = SW(buf_)(rows * K, 7), *c2p = SW(buf_)(rows * K, 8);
        T *backp = SW(buf_)(N * C * H * W, 9);
        for (nnf_index n = 0; n < N; ++n)
            for (nnf_index k = 0; k < K; ++k)
                for (nnf_index q = 0; q < P; ++q)
                    c2p[(n * K + k) * P + q] = c2[(n * P + q) * K + k];
        CHECK(SW(nnf_im2col_planar_)(x, N, C, H, W, FH, FW, s, pad, colp, threads) == NNF_OK,
              "im2col_planar");
        CHECK(SW(nnf_col2im_planar_)(c2p, N, C, H, W, FH, FW, s, pad, backp, threads)
              == NNF_OK, "col2im_planar");
        for (nnf_index n = 0; n < N; ++n)
            for (nnf_index k = 0; k < K; ++k)
                for (nnf_index q = 0; q < P; ++q)
                    CHECK(colp[(n * K + k) * P + q] == col[(n * P + q) * K + k],
                          "im2col_planar differs from im2col");
        for (nnf_index k = 0; k < N * C * H * W; ++k)
            CHECK(backp[k] == back[k], "col2im_planar differs from col2im");
        free(colp); free(c2p); free(backp);

        T *out = SW(buf_)(small, 5), *dout = SW(buf_)(small, 6);
        int32_t *am = malloc(sizeof(int32_t) * (size_t)small);
        CHECK(SW(nnf_maxpool_fwd_)(x, N, C, H, W, FH, FW, s, pad, out, am, threads) == NNF_OK,
              "maxpool_fwd");
        for (nnf_index k = 0; k < small; ++k)
            CHECK(am[k] >= 0 && am[k] < FH * FW, "argmax %d outside the window", (int)am[k]);
        CHECK(SW(nnf_maxpool_bwd_)(dout, am, N, C, H, W, FH, FW, s, pad, NULL, back, threads)
              == NNF_OK, "maxpool_bwd");
        {   /* with a ReLU mask: the same, zeroed where the mask is set */
            uint8_t *rm = malloc((size_t)(N * C * H * W > 0 ? N * C * H * W : 1));
            T *masked = SW(buf_)(N * C * H * W, 9);
            for (nnf_index k = 0; k < N * C * H * W; ++k) rm[k] = (uint8_t)(k % 3 == 0);
            CHECK(SW(nnf_maxpool_bwd_)(dout, am, N, C, H, W, FH, FW, s, pad, rm, masked,
                                       threads) == NNF_OK, "maxpool_bwd + relu");
            for (nnf_index k = 0; k < N * C * H * W; ++k)
                CHECK(masked[k] == (rm[k] ? (T)0 : back[k]), "maxpool_bwd + relu at %lld",
                      (long long)k);
            free(rm); free(masked);
        }
        for (nnf_index k = 0; k < small; ++k) /* before the window, after it, far out */
            am[k] = (int32_t)(k % 3 == 0 ? -7 : (k % 3 == 1 ? FH * FW : INT32_MAX));
        CHECK(SW(nnf_maxpool_bwd_)(dout, am, N, C, H, W, FH, FW, s, pad, NULL, back, threads)
              == NNF_OK, "maxpool_bwd with corrupted argmax");
        for (nnf_index k = 0; k < N * C * H * W; ++k)
            CHECK(back[k] == (T)0, "a corrupted argmax reached dx");
        CHECK(SW(nnf_avgpool_fwd_)(x, N, C, H, W, FH, FW, s, pad, out, threads) == NNF_OK,
              "avgpool_fwd");
        CHECK(SW(nnf_avgpool_bwd_)(dout, N, C, H, W, FH, FW, s, pad, back, threads) == NNF_OK,
              "avgpool_bwd");
        free(x); free(col); free(c2); free(back); free(out); free(dout); free(am);
        ++cases;
    }
}

static void SW(sweep_geometry_)(int threads)
{
    for (nnf_index N = 1; N <= 2; ++N)
    for (nnf_index C = 1; C <= 3; C += 2)
    for (nnf_index H = 1; H <= 6; ++H)
    for (nnf_index W = 1; W <= 6; W += 2)
    for (nnf_index FH = 1; FH <= 4; ++FH)
    for (nnf_index FW = 1; FW <= 3; ++FW)
    for (nnf_index s = 1; s <= 3; ++s)
    for (nnf_index pad = 0; pad <= 2; ++pad)
        SW(one_geometry_)(N, C, H, W, FH, FW, s, pad, threads);
    /* big enough for the OpenMP paths (work above NNF_PARALLEL_MIN_WORK) */
    SW(one_geometry_)(4, 8, 32, 30, 3, 3, 1, 1, threads);
    SW(one_geometry_)(3, 5, 33, 31, 2, 2, 2, 1, threads);
    SW(one_geometry_)(2, 3, 40, 40, 5, 4, 3, 2, threads);
    /* strides so large that only the first window exists (stride + a overflowed in
     * col2im's range computation: found by the kernel fuzzer under UBSan) */
    SW(one_geometry_)(2, 2, 5, 6, 3, 2, INT64_MAX, 1, threads);
    SW(one_geometry_)(1, 1, 4, 4, 2, 2, INT64_MAX / 2, 2, threads);
}

/* Convolution epilogue and bias gradient. */
static void SW(one_conv_)(nnf_index N, nnf_index FN, nnf_index P, int threads)
{
    T *rows = SW(buf_)(N * P * FN, 1), *b = SW(buf_)(FN, 2), *out = SW(buf_)(N * FN * P, 3);
    T *db = SW(buf_)(FN, 4);
    double *partial = malloc(sizeof(double) * (size_t)(N * FN > 0 ? N * FN : 1));
    CHECK(SW(nnf_conv_bias_nchw_)(rows, b, N, FN, P, out, threads) == NNF_OK, "conv_bias");
    for (nnf_index k = 0; k < N * FN * P; ++k) rows[k] = out[k];
    CHECK(SW(nnf_conv_bias_planar_)(rows, b, N, FN, P, threads) == NNF_OK, "conv_bias_planar");
    for (nnf_index k = 0; k < N * FN * P; ++k)
        CHECK(rows[k] == out[k] + b[(k / P) % FN], "conv_bias_planar adds the wrong bias");
    CHECK(SW(nnf_conv_bwd_rows_db_)(out, N, FN, P, rows, db, partial, threads) == NNF_OK,
          "conv_bwd_rows_db");
    CHECK(SW(nnf_conv_bwd_rows_db_)(out, N, FN, P, NULL, db, partial, threads) == NNF_OK,
          "conv_db");
    free(rows); free(b); free(out); free(db); free(partial);
    ++cases;
}

static void SW(sweep_conv_)(int threads)
{
    for (nnf_index N = 0; N <= 3; ++N)
    for (nnf_index FN = 0; FN <= 5; FN += 1)
    for (nnf_index P = 0; P <= 70; P += 7)
        SW(one_conv_)(N, FN, P, threads);
    SW(one_conv_)(8, 64, 900, threads); /* the parallel path */
}

/* Direct stride-1 convolution, every vector build this CPU runs, on an exactly sized
 * scratch, against naive loops (forward with bias, filter gradient). */
static void SW(one_dconv_)(nnf_index N, nnf_index C, nnf_index H, nnf_index W, nnf_index F,
                           nnf_index KH, nnf_index KW, nnf_index ph, nnf_index pw, int threads)
{
    const nnf_index per = nnf_dconv_scratch(C, H, W, F, KH, KW, ph, pw);
    const nnf_index OH = H + 2 * ph - KH + 1, OW = W + 2 * pw - KW + 1;
    if (OH < 1 || OW < 1) {
        CHECK(per == -1, "dconv_scratch accepted a filter larger than the padded input");
        return;
    }
    CHECK(per > 0, "dconv_scratch refused a valid geometry");
    T *x = SW(buf_)(N * C * H * W, 1), *w = SW(buf_)(F * C * KH * KW, 2), *b = SW(buf_)(F, 3);
    T *dout = SW(buf_)(N * F * OH * OW, 4), *out = SW(buf_)(N * F * OH * OW, 5);
    T *dw = SW(buf_)(F * C * KH * KW, 6), *scratch = SW(buf_)(per * threads, 7);
    T *relu = SW(buf_)(N * F * OH * OW, 8), *db = SW(buf_)(F, 9), *db_ref = SW(buf_)(F, 10);
    double *partial = malloc(sizeof(double) * (size_t)(N * F));
    uint8_t *mask = malloc((size_t)(N * F * OH * OW));
    double *ref = malloc(sizeof(double) * (size_t)(N * F * OH * OW));
    double *ref_dw = calloc((size_t)(F * C * KH * KW), sizeof(double));
    double scale = 1.0;
    for (nnf_index n = 0; n < N; ++n)
    for (nnf_index f = 0; f < F; ++f)
    for (nnf_index oh = 0; oh < OH; ++oh)
    for (nnf_index ow = 0; ow < OW; ++ow) {
        double acc = (double)b[f];
        const double d = (double)dout[((n * F + f) * OH + oh) * OW + ow];
        for (nnf_index c = 0; c < C; ++c)
        for (nnf_index i = 0; i < KH; ++i)
        for (nnf_index j = 0; j < KW; ++j) {
            const nnf_index h = oh + i - ph, v = ow + j - pw;
            if (h < 0 || h >= H || v < 0 || v >= W) continue;
            const double xv = (double)x[((n * C + c) * H + h) * W + v];
            acc += (double)w[((f * C + c) * KH + i) * KW + j] * xv;
            ref_dw[((f * C + c) * KH + i) * KW + j] += d * xv;
            scale += fabs(d * xv);
        }
        ref[((n * F + f) * OH + oh) * OW + ow] = acc;
    }
    for (int isa = 0; isa <= nnf_dconv_isa(); ++isa) {
        CHECK(SW(nnf_dconv_fwd_)(x, N, C, H, W, w, F, KH, KW, ph, pw, b, out, NULL, scratch,
                                 threads, isa) == NNF_OK, "dconv_fwd isa %d", isa);
        CHECK(SW(nnf_dconv_fwd_)(x, N, C, H, W, w, F, KH, KW, ph, pw, b, relu, mask, scratch,
                                 threads, isa) == NNF_OK, "dconv_fwd + relu isa %d", isa);
        for (nnf_index k = 0; k < N * F * OH * OW; ++k)
            CHECK(mask[k] == (out[k] <= 0) && relu[k] == (mask[k] ? (T)0 : out[k]),
                  "dconv_fwd + relu isa %d at %lld", isa, (long long)k);
        CHECK(SW(nnf_dconv_dw_)(x, N, C, H, W, dout, F, KH, KW, ph, pw, dw, NULL, scratch,
                                threads, isa) == NNF_OK, "dconv_dw isa %d", isa);
        CHECK(SW(nnf_dconv_dw_)(x, N, C, H, W, dout, F, KH, KW, ph, pw, dw, db, scratch,
                                threads, isa) == NNF_OK, "dconv_dw + db isa %d", isa);
        CHECK(SW(nnf_conv_bwd_rows_db_)(dout, N, F, OH * OW, NULL, db_ref, partial, threads)
              == NNF_OK, "conv_db");
        for (nnf_index f = 0; f < F; ++f)
            CHECK(db[f] == db_ref[f], "dconv_dw's db differs from conv_db's, isa %d", isa);
        for (nnf_index k = 0; k < N * F * OH * OW; ++k)
            CHECK(fabs((double)out[k] - ref[k]) <= 1e-4 * scale, "dconv_fwd isa %d at %lld",
                  isa, (long long)k);
        for (nnf_index k = 0; k < F * C * KH * KW; ++k)
            CHECK(fabs((double)dw[k] - ref_dw[k]) <= 1e-4 * scale, "dconv_dw isa %d at %lld",
                  isa, (long long)k);
    }
    { /* a scratch pointer off every alignment, ending exactly at its allocation */
        T *odd = malloc(sizeof(T) * (size_t)(per * threads + 1));
        CHECK(SW(nnf_dconv_fwd_)(x, N, C, H, W, w, F, KH, KW, ph, pw, b, out, NULL, odd + 1,
                                 threads, -1) == NNF_OK, "dconv_fwd, misaligned scratch");
        CHECK(SW(nnf_dconv_dw_)(x, N, C, H, W, dout, F, KH, KW, ph, pw, dw, db, odd + 1,
                                threads, -1) == NNF_OK, "dconv_dw, misaligned scratch");
        free(odd);
    }
    CHECK(SW(nnf_dconv_fwd_)(x, N, C, H, W, w, F, KH, KW, ph, pw, b, out, NULL, scratch, threads, 3)
          == NNF_EINVAL, "dconv_fwd accepted an unknown isa");
    x[0] = (T)INFINITY; /* the filter gradient refuses a non-finite input */
    CHECK(SW(nnf_dconv_dw_)(x, N, C, H, W, dout, F, KH, KW, ph, pw, dw, db, scratch, threads, -1)
          == NNF_ENONFINITE, "dconv_dw accepted inf");
    free(x); free(w); free(b); free(dout); free(out); free(dw); free(scratch); free(ref);
    free(ref_dw); free(relu); free(mask); free(db); free(db_ref); free(partial);
    ++cases;
}

static void SW(sweep_dconv_)(int threads)
{
    for (nnf_index N = 1; N <= 2; ++N)
    for (nnf_index C = 1; C <= 3; C += 2)
    for (nnf_index H = 1; H <= 5; H += 2)
    for (nnf_index W = 1; W <= 6; ++W)
    for (nnf_index F = 1; F <= 7; F += 3)
    for (nnf_index K = 1; K <= 3; ++K)
    for (nnf_index pad = 0; pad <= 2; ++pad)
        SW(one_dconv_)(N, C, H, W, F, K, 4 - K, pad, (pad + W) % 3, threads);
    SW(one_dconv_)(5, 4, 17, 19, 13, 3, 3, 1, 1, threads); /* the parallel paths */
    SW(one_dconv_)(70, 2, 3, 3, 9, 3, 3, 1, 1, threads);   /* more images than one group */
}

/* Element-wise, affine bias, softmax + cross-entropy, batch norm, optimizers. */
static void SW(sweep_dense_)(int threads)
{
    static const nnf_index sizes[] = {0, 1, 2, 7, 33, 257};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; ++si) {
        const nnf_index n = sizes[si];
        T *x = SW(buf_)(n, 1), *o = SW(buf_)(n, 2), *d = SW(buf_)(n, 3);
        T *s1 = SW(buf_)(n, 4), *s2 = SW(buf_)(n, 5);
        uint8_t *mask = malloc((size_t)(n > 0 ? n : 1));
        int64_t *step = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
        for (nnf_index k = 0; k < n; ++k) s2[k] = s2[k] < 0 ? -s2[k] : s2[k]; /* v >= 0 */
        SW(nnf_relu_)(x, n, o, threads);
        SW(nnf_relu_fwd_)(x, n, o, mask, threads);
        SW(nnf_relu_bwd_)(d, mask, n, o, threads);
        SW(nnf_positive_)(x, n, 0, o, threads);
        SW(nnf_positive_)(x, n, 1, o, threads);
        SW(nnf_step_)(x, n, step, threads);
        SW(nnf_neg_abs_)(x, n, o, threads);
        SW(nnf_sigmoid_finish_)(x, o, n, 0, d, threads);
        SW(nnf_sigmoid_finish_)(x, o, n, 1, d, threads);
        SW(nnf_sigmoid_bwd_)(x, o, n, d, threads);
        SW(nnf_mul_mask_)(x, mask, n, o, threads);
        SW(nnf_scale_)(x, 0.5, n, o, threads);
        SW(nnf_sgd_)(o, x, n, 0.1, threads);
        SW(nnf_momentum_)(o, x, s1, n, 0.1, 0.9, threads);
        SW(nnf_nesterov_)(o, x, s1, n, 0.1, 0.9, threads);
        SW(nnf_adagrad_)(o, x, s2, n, 0.1, threads);
        SW(nnf_rmsprop_)(o, x, s2, n, 0.1, 0.99, threads);
        SW(nnf_adam_)(o, x, s1, s2, n, 0.01, 0.9, 0.999, threads);
        for (nnf_index k = 0; k < n; ++k)
            CHECK(o[k] == o[k], "optimizer produced NaN at %lld", (long long)k);
        free(x); free(o); free(d); free(s1); free(s2); free(mask); free(step);
        ++cases;
    }
    for (nnf_index rows = 0; rows <= 5; ++rows)
    for (nnf_index cols = 1; cols <= 40; cols += 13) {
        const nnf_index n = rows * cols;
        T *x = SW(buf_)(n, 1), *y = SW(buf_)(n, 2), *t = SW(buf_)(n, 3), *dx = SW(buf_)(n, 4);
        T *b = SW(buf_)(cols, 5);
        int64_t *labels = malloc(sizeof(int64_t) * (size_t)(rows > 0 ? rows : 1));
        double *row_loss = malloc(sizeof(double) * (size_t)(rows > 0 ? rows : 1)), loss = 0;
        for (nnf_index r = 0; r < rows; ++r) labels[r] = (r * 5) % cols;
        SW(nnf_bias_add_)(x, b, rows, cols, threads);
        SW(nnf_softmax_)(x, rows, cols, y, threads);
        CHECK(SW(nnf_cross_entropy_)(y, rows, cols, labels, &loss) == NNF_OK, "cross_entropy");
        CHECK(SW(nnf_softmax_xent_bwd_)(y, rows, cols, labels, NULL, dx, threads) == NNF_OK,
              "softmax_xent_bwd (labels)");
        CHECK(SW(nnf_softmax_xent_bwd_)(y, rows, cols, NULL, t, dx, threads) == NNF_OK,
              "softmax_xent_bwd (dense)");
        CHECK(SW(nnf_softmax_xent_)(x, rows, cols, labels, t, y, dx, row_loss, &loss, threads)
              == NNF_OK, "softmax_xent");
        CHECK(SW(nnf_softmax_xent_)(x, rows, cols, labels, NULL, y, NULL, row_loss, &loss, threads)
              == NNF_OK, "softmax_xent without dx");
        if (rows > 0) { /* a label out of range: refused before anything is written */
            for (nnf_index k = 0; k < n; ++k) dx[k] = (T)7;
            labels[rows - 1] = (rows % 2) ? cols : -1;
            CHECK(SW(nnf_softmax_xent_)(x, rows, cols, labels, NULL, y, dx, row_loss, &loss,
                                        threads) == NNF_EINVAL, "bad label accepted");
            CHECK(SW(nnf_softmax_xent_bwd_)(y, rows, cols, labels, NULL, dx, threads)
                  == NNF_EINVAL, "bad label accepted (bwd)");
            CHECK(SW(nnf_cross_entropy_)(y, rows, cols, labels, &loss) == NNF_EINVAL,
                  "bad label accepted (cross_entropy)");
            for (nnf_index k = 0; k < n; ++k) CHECK(dx[k] == (T)7, "written before refusing");
        }
        free(x); free(y); free(t); free(dx); free(b); free(labels); free(row_loss);
        ++cases;
    }
    static const nnf_index chans[] = {0, 1, 5, 300};
    for (nnf_index N = 1; N <= 3; ++N)
    for (size_t ci = 0; ci < sizeof chans / sizeof *chans; ++ci)
    for (nnf_index I = 1; I <= 4; I += 3) {
        const nnf_index C = chans[ci], n = N * C * I;
        T *x = SW(buf_)(n, 1), *out = SW(buf_)(n, 2), *xc = SW(buf_)(n, 3), *xn = SW(buf_)(n, 4);
        T *dx = SW(buf_)(n, 5), *g = SW(buf_)(C, 6), *bt = SW(buf_)(C, 7), *rm = SW(buf_)(C, 8);
        T *rv = SW(buf_)(C, 9), *sd = SW(buf_)(C, 10), *rm2 = SW(buf_)(C, 11);
        T *rv2 = SW(buf_)(C, 12), *dg = SW(buf_)(C, 13), *db = SW(buf_)(C, 14);
        for (nnf_index c = 0; c < C; ++c) rv[c] = rv[c] < 0 ? -rv[c] : rv[c];
        CHECK(SW(nnf_bn_fwd_train_)(x, N, C, I, g, bt, rm, rv, 0.9, out, xc, xn, sd, rm2, rv2,
                                    threads) == NNF_OK, "bn_fwd_train");
        CHECK(SW(nnf_bn_fwd_test_)(x, N, C, I, g, bt, rm, rv, out, threads) == NNF_OK,
              "bn_fwd_test");
        CHECK(SW(nnf_bn_bwd_)(x, xc, xn, sd, g, N, C, I, dx, dg, db, threads) == NNF_OK, "bn_bwd");
        free(x); free(out); free(xc); free(xn); free(dx); free(g); free(bt); free(rm); free(rv);
        free(sd); free(rm2); free(rv2); free(dg); free(db);
        ++cases;
    }
    CHECK(SW(nnf_bn_fwd_train_)(NULL, 0, 1, 1, NULL, NULL, NULL, NULL, 0.9, NULL, NULL, NULL,
                                NULL, NULL, NULL, threads) == NNF_EINVAL, "bn with N = 0");
}

#undef SW
#undef SW_CAT
#undef SW_CAT2
