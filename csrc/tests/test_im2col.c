/* test_im2col.c - plain-C checks of im2col/col2im against naive loops.
 * Build: cmake -S . -B build/ctest -DNNFAST_BUILD_CTESTS=ON && cmake --build build/ctest && ctest --test-dir build/ctest */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "im2col.h"

static int failures = 0;

static double at(const double *x, nnf_index C, nnf_index H, nnf_index W,
                 nnf_index n, nnf_index c, nnf_index h, nnf_index w)
{
    if (h < 0 || h >= H || w < 0 || w >= W) return 0.0;
    return x[((n * C + c) * H + h) * W + w];
}

static void check(nnf_index N, nnf_index C, nnf_index H, nnf_index W,
                  nnf_index FH, nnf_index FW, nnf_index s, nnf_index p, int threads)
{
    nnf_index OH = nnf_conv_out_size(H, FH, s, p), OW = nnf_conv_out_size(W, FW, s, p);
    nnf_index K = C * FH * FW, R = N * OH * OW, X = N * C * H * W;
    double *x = malloc(sizeof(double) * X), *col = malloc(sizeof(double) * R * K);
    double *back = malloc(sizeof(double) * X), *naive = calloc(X, sizeof(double));
    if (!x || !col || !back || !naive) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (nnf_index k = 0; k < X; ++k) x[k] = (double)((k * 7919) % 101) / 7.0 - 5.0;

    nnf_im2col_f64(x, N, C, H, W, FH, FW, s, p, col, threads);
    for (nnf_index n = 0; n < N; ++n)
        for (nnf_index oh = 0; oh < OH; ++oh)
            for (nnf_index ow = 0; ow < OW; ++ow)
                for (nnf_index c = 0; c < C; ++c)
                    for (nnf_index i = 0; i < FH; ++i)
                        for (nnf_index j = 0; j < FW; ++j) {
                            nnf_index r = (n * OH + oh) * OW + ow, q = (c * FH + i) * FW + j;
                            double want = at(x, C, H, W, n, c, oh * s - p + i, ow * s - p + j);
                            if (col[r * K + q] != want) {
                                if (failures++ < 10)
                                    fprintf(stderr, "im2col mismatch at row %lld col %lld\n",
                                            (long long)r, (long long)q);
                            }
                            /* naive scatter for col2im, using col's value */
                            nnf_index h = oh * s - p + i, w = ow * s - p + j;
                            if (h >= 0 && h < H && w >= 0 && w < W)
                                naive[((n * C + c) * H + h) * W + w] += col[r * K + q];
                        }
    nnf_col2im_f64(col, N, C, H, W, FH, FW, s, p, back, threads);
    for (nnf_index k = 0; k < X; ++k)
        if (fabs(back[k] - naive[k]) > 1e-12 * (1.0 + fabs(naive[k]))) {
            if (failures++ < 10) fprintf(stderr, "col2im mismatch at %lld\n", (long long)k);
        }
    free(x); free(col); free(back); free(naive);
}

int main(void)
{
    const nnf_index geoms[][8] = {
        {1, 1, 5, 5, 3, 3, 1, 0}, {2, 3, 7, 6, 3, 2, 2, 1}, {3, 2, 9, 4, 1, 4, 3, 2},
        {1, 4, 6, 6, 2, 2, 3, 0}, {4, 8, 28, 28, 5, 5, 1, 2},
    };
    for (size_t g = 0; g < sizeof geoms / sizeof geoms[0]; ++g)
        for (int t = 1; t <= 2; ++t)
            check(geoms[g][0], geoms[g][1], geoms[g][2], geoms[g][3], geoms[g][4],
                  geoms[g][5], geoms[g][6], geoms[g][7], t);
    if (nnf_conv_out_size(3, 5, 1, 0) != -1 || nnf_conv_out_size(5, 3, 0, 0) != -1) {
        fprintf(stderr, "nnf_conv_out_size accepted a bad geometry\n");
        ++failures;
    }
    printf("%d failed\n", failures);
    return failures != 0;
}
