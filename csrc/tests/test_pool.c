/* test_pool.c - plain-C checks of max/avg pooling against naive loops.
 * Build: cmake -S . -B build/ctest -DNNFAST_BUILD_CTESTS=ON && cmake --build build/ctest && ctest --test-dir build/ctest */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "im2col.h"
#include "pool.h"

static int failures = 0;

static void fail(const char *what, nnf_index k)
{
    if (failures++ < 10) fprintf(stderr, "%s mismatch at %lld\n", what, (long long)k);
}

static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static void check(nnf_index N, nnf_index C, nnf_index H, nnf_index W, nnf_index PH,
                  nnf_index PW, nnf_index s, nnf_index p, int threads)
{
    nnf_index OH = nnf_conv_out_size(H, PH, s, p), OW = nnf_conv_out_size(W, PW, s, p);
    nnf_index X = N * C * H * W, O = N * C * OH * OW;
    double *x = malloc(sizeof(double) * X), *out = malloc(sizeof(double) * O);
    double *dout = malloc(sizeof(double) * O), *dx = malloc(sizeof(double) * X);
    double *want_dx = calloc(X, sizeof(double)), *want_avg_dx = calloc(X, sizeof(double));
    double *avg = malloc(sizeof(double) * O);
    int32_t *arg = malloc(sizeof(int32_t) * O);
    if (!x || !out || !dout || !dx || !want_dx || !want_avg_dx || !avg || !arg) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    /* few distinct values (many ties), a NaN and some infinities */
    for (nnf_index k = 0; k < X; ++k) x[k] = (double)((k * 7919) % 5) - 2.0;
    if (X > 7) { x[3] = NAN; x[5] = -INFINITY; x[7] = INFINITY; }
    for (nnf_index k = 0; k < O; ++k) dout[k] = (double)((k * 31) % 17) / 4.0 - 2.0;

    nnf_maxpool_fwd_f64(x, N, C, H, W, PH, PW, s, p, out, arg, threads);
    nnf_avgpool_fwd_f64(x, N, C, H, W, PH, PW, s, p, avg, threads);
    for (nnf_index n = 0; n < N; ++n)
        for (nnf_index c = 0; c < C; ++c)
            for (nnf_index oh = 0; oh < OH; ++oh)
                for (nnf_index ow = 0; ow < OW; ++ow) {
                    nnf_index o = ((n * C + c) * OH + oh) * OW + ow;
                    double best = 0, sum = 0;
                    int have = 0;
                    nnf_index bi = 0;
                    for (nnf_index i = 0; i < PH; ++i)
                        for (nnf_index j = 0; j < PW; ++j) {
                            nnf_index h = oh * s - p + i, w = ow * s - p + j;
                            int inside = h >= 0 && h < H && w >= 0 && w < W;
                            double v = inside ? x[((n * C + c) * H + h) * W + w] : -INFINITY;
                            sum += inside ? v : 0.0;
                            /* first maximum in row-major order; the first NaN wins */
                            if (!have || (!isnan(best) && (isnan(v) || v > best))) {
                                best = v;
                                bi = i * PW + j;
                                have = 1;
                            }
                        }
                    if (!same(out[o], best) || arg[o] != bi) fail("maxpool forward", o);
                    double mean = sum / (double)(PH * PW);
                    if (!same(avg[o], mean) && !(fabs(avg[o] - mean) <= 1e-12 * (1 + fabs(mean))))
                        fail("avgpool forward", o);
                    nnf_index h = oh * s - p + bi / PW, w = ow * s - p + bi % PW;
                    if (h >= 0 && h < H && w >= 0 && w < W)
                        want_dx[((n * C + c) * H + h) * W + w] += dout[o];
                    for (nnf_index i = 0; i < PH; ++i)
                        for (nnf_index j = 0; j < PW; ++j) {
                            nnf_index hh = oh * s - p + i, ww = ow * s - p + j;
                            if (hh >= 0 && hh < H && ww >= 0 && ww < W)
                                want_avg_dx[((n * C + c) * H + hh) * W + ww] +=
                                    dout[o] / (double)(PH * PW);
                        }
                }
    nnf_maxpool_bwd_f64(dout, arg, N, C, H, W, PH, PW, s, p, NULL, dx, threads);
    for (nnf_index k = 0; k < X; ++k)
        if (fabs(dx[k] - want_dx[k]) > 1e-12 * (1.0 + fabs(want_dx[k]))) fail("maxpool backward", k);
    nnf_avgpool_bwd_f64(dout, N, C, H, W, PH, PW, s, p, dx, threads);
    for (nnf_index k = 0; k < X; ++k)
        if (fabs(dx[k] - want_avg_dx[k]) > 1e-12 * (1.0 + fabs(want_avg_dx[k])))
            fail("avgpool backward", k);

    /* float32: same selections as float64 on values exact in both */
    float *xf = malloc(sizeof(float) * X), *outf = malloc(sizeof(float) * O);
    int32_t *argf = malloc(sizeof(int32_t) * O);
    if (!xf || !outf || !argf) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (nnf_index k = 0; k < X; ++k) xf[k] = (float)x[k];
    nnf_maxpool_fwd_f32(xf, N, C, H, W, PH, PW, s, p, outf, argf, threads);
    for (nnf_index k = 0; k < O; ++k)
        if (!same((double)outf[k], out[k]) || argf[k] != arg[k]) fail("maxpool forward f32", k);

    free(x); free(out); free(dout); free(dx); free(want_dx); free(want_avg_dx); free(avg);
    free(arg); free(xf); free(outf); free(argf);
}

int main(void)
{
    const nnf_index geoms[][8] = {  /* N, C, H, W, PH, PW, stride, pad */
        {1, 1, 4, 4, 2, 2, 2, 0}, {2, 3, 5, 7, 3, 3, 2, 1}, {2, 2, 6, 5, 2, 3, 1, 1},
        {1, 2, 7, 6, 4, 2, 3, 1}, {3, 1, 5, 5, 1, 1, 3, 0}, {1, 3, 6, 6, 4, 4, 2, 2},
        {8, 16, 24, 24, 2, 2, 2, 0}, {4, 8, 13, 11, 3, 3, 1, 1},
    };
    for (size_t g = 0; g < sizeof geoms / sizeof geoms[0]; ++g)
        for (int t = 1; t <= 2; ++t)
            check(geoms[g][0], geoms[g][1], geoms[g][2], geoms[g][3], geoms[g][4],
                  geoms[g][5], geoms[g][6], geoms[g][7], t);
    double x[4] = {1, 2, 3, 4}, out[1];
    int32_t arg[1];
    if (nnf_maxpool_fwd_f64(x, 1, 1, 2, 2, 3, 3, 1, 0, out, arg, 1) != NNF_EINVAL) {
        fprintf(stderr, "maxpool accepted a window larger than the input\n");
        ++failures;
    }
    printf("%d failed\n", failures);
    return failures != 0;
}
