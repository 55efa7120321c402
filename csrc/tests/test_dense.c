/* test_dense.c - plain-C checks of the eltwise, affine, softmax_xent, batchnorm and optim
 * kernels against naive loops (1 and 2 threads; optimizer updates must be bit-exact).
 * Build: cmake -S . -B build/ctest -DNNFAST_BUILD_CTESTS=ON && cmake --build build/ctest && ctest --test-dir build/ctest */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "affine.h"
#include "batchnorm.h"
#include "eltwise.h"
#include "optim.h"
#include "softmax_xent.h"

static int failures = 0;

#define CHECK(cond, ...)                                               \
    do {                                                               \
        if (!(cond)) {                                                 \
            if (failures++ < 20) {                                     \
                fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);        \
                fprintf(stderr, __VA_ARGS__);                          \
                fputc('\n', stderr);                                   \
            }                                                          \
        }                                                              \
    } while (0)

static double val(nnf_index k) { return (double)((k * 7919) % 203) / 17.0 - 6.0; }

static int close_rel(double a, double b, double rtol)
{
    return fabs(a - b) <= rtol * (1e-300 + fabs(b)) || (isnan(a) && isnan(b));
}

static void test_eltwise(int threads)
{
    enum { n = 300000 }; /* above the parallel threshold */
    double *x = malloc(sizeof(double) * n), *out = malloc(sizeof(double) * n);
    double *dx = malloc(sizeof(double) * n), *r = malloc(sizeof(double) * n);
    uint8_t *mask = malloc(n);
    for (nnf_index i = 0; i < n; ++i) { x[i] = val(i); r[i] = (double)(i % 97) / 97.0; }
    x[5] = 0.0;
    nnf_relu_fwd_f64(x, n, out, mask, threads);
    for (nnf_index i = 0; i < n; ++i) {
        CHECK(mask[i] == (x[i] <= 0), "relu mask at %lld", (long long)i);
        CHECK(out[i] == (x[i] > 0 ? x[i] : 0.0), "relu out at %lld", (long long)i);
    }
    nnf_relu_bwd_f64(x, mask, n, dx, threads);
    for (nnf_index i = 0; i < n; ++i)
        CHECK(dx[i] == (x[i] > 0 ? x[i] : 0.0), "relu bwd at %lld", (long long)i);
    nnf_neg_abs_f64(x, n, out, threads);
    for (nnf_index i = 0; i < n; ++i) out[i] = exp(out[i]); /* the caller's exp */
    nnf_sigmoid_finish_f64(x, out, n, 0, out, threads);
    for (nnf_index i = 0; i < n; i += 7)
        CHECK(close_rel(out[i], 1.0 / (1.0 + exp(-x[i])), 1e-15), "sigmoid at %lld", (long long)i);
    for (nnf_index i = 0; i < n; ++i) mask[i] = r[i] > 0.3;
    nnf_mul_mask_f64(x, mask, n, out, threads);
    for (nnf_index i = 0; i < n; ++i)
        CHECK(out[i] == x[i] * (double)(r[i] > 0.3), "dropout at %lld", (long long)i);
    free(x); free(out); free(dx); free(r); free(mask);
}

static void test_affine(int threads)
{
    enum { rows = 300, cols = 500 };
    float *o = malloc(sizeof(float) * rows * cols), *b = malloc(sizeof(float) * cols);
    for (nnf_index c = 0; c < cols; ++c) b[c] = (float)val(c);
    for (nnf_index k = 0; k < rows * cols; ++k) o[k] = (float)val(k + 11);
    nnf_bias_add_f32(o, b, rows, cols, threads);
    for (nnf_index k = 0; k < rows * cols; ++k)
        CHECK(o[k] == (float)val(k + 11) + b[k % cols], "bias add at %lld", (long long)k);
    free(o); free(b);
}

static void test_softmax_xent(int threads)
{
    enum { rows = 70, cols = 1000 };
    double *x = malloc(sizeof(double) * rows * cols), *y = malloc(sizeof(double) * rows * cols);
    double *dx = malloc(sizeof(double) * rows * cols), *row = malloc(sizeof(double) * rows);
    int64_t labels[rows];
    double loss = 0.0, want = 0.0;
    for (nnf_index k = 0; k < rows * cols; ++k) x[k] = val(k) * 3.0;
    for (nnf_index r = 0; r < rows; ++r) labels[r] = (r * 37) % cols;
    CHECK(nnf_softmax_xent_f64(x, rows, cols, labels, NULL, y, dx, row, &loss, threads) == NNF_OK,
          "softmax_xent rejected valid labels");
    for (nnf_index r = 0; r < rows; ++r) {
        double m = -INFINITY, s = 0.0;
        for (nnf_index c = 0; c < cols; ++c) m = fmax(m, x[r * cols + c]);
        for (nnf_index c = 0; c < cols; ++c) s += exp(x[r * cols + c] - m);
        for (nnf_index c = 0; c < cols; ++c) {
            double p = exp(x[r * cols + c] - m) / s;
            double g = (p - (c == labels[r])) / rows;
            CHECK(close_rel(y[r * cols + c], p, 1e-12), "softmax (%lld, %lld)", (long long)r, (long long)c);
            CHECK(close_rel(dx[r * cols + c], g, 1e-12), "softmax grad (%lld, %lld)", (long long)r, (long long)c);
            if (c == labels[r]) want -= log(p + 1e-7) / rows;
        }
    }
    CHECK(close_rel(loss, want, 1e-12), "softmax_xent loss %.17g vs %.17g", loss, want);
    labels[3] = cols; /* out of range: refused, nothing written */
    y[0] = 42.0;
    CHECK(nnf_softmax_xent_f64(x, rows, cols, labels, NULL, y, dx, row, &loss, threads) == NNF_EINVAL,
          "softmax_xent accepted label == cols");
    CHECK(y[0] == 42.0, "softmax_xent wrote before refusing");
    labels[3] = -1;
    CHECK(nnf_cross_entropy_f64(y, rows, cols, labels, &loss) == NNF_EINVAL,
          "cross_entropy accepted a negative label");
    free(x); free(y); free(dx); free(row);
}

static void test_batchnorm(int threads, nnf_index N, nnf_index C, nnf_index I)
{
    nnf_index total = N * C * I;
    double *x = malloc(sizeof(double) * total), *out = malloc(sizeof(double) * total);
    double *xc = malloc(sizeof(double) * total), *xn = malloc(sizeof(double) * total);
    double *dx = malloc(sizeof(double) * total);
    double *g = malloc(sizeof(double) * C), *b = malloc(sizeof(double) * C);
    double *z = calloc(C, sizeof(double)), *std = malloc(sizeof(double) * C);
    double *rm = malloc(sizeof(double) * C), *rv = malloc(sizeof(double) * C);
    double *dg = malloc(sizeof(double) * C), *db = malloc(sizeof(double) * C);
    for (nnf_index k = 0; k < total; ++k) x[k] = val(k);
    for (nnf_index c = 0; c < C; ++c) { g[c] = 1.0 + 0.01 * c; b[c] = 0.1 * c; }
    nnf_bn_fwd_train_f64(x, N, C, I, g, b, z, z, 0.9, out, xc, xn, std, rm, rv, threads);
    /* dout = x: backward of sum(out * x) */
    nnf_bn_bwd_f64(x, xc, xn, std, g, N, C, I, dx, dg, db, threads);
    double M = (double)(N * I);
    for (nnf_index c = 0; c < C; ++c) {
        double mu = 0, var = 0, sdo = 0, sdoxn = 0;
        for (nnf_index n = 0; n < N; ++n)
            for (nnf_index i = 0; i < I; ++i) mu += x[(n * C + c) * I + i];
        mu /= M;
        for (nnf_index n = 0; n < N; ++n)
            for (nnf_index i = 0; i < I; ++i) {
                double d = x[(n * C + c) * I + i] - mu;
                var += d * d;
            }
        var /= M;
        double s = sqrt(var + 1e-6);
        CHECK(close_rel(std[c], s, 1e-12), "bn std[%lld]", (long long)c);
        CHECK(close_rel(rm[c], 0.1 * mu, 1e-12) && close_rel(rv[c], 0.1 * var, 1e-12),
              "bn running stats [%lld]", (long long)c);
        for (nnf_index n = 0; n < N; ++n)
            for (nnf_index i = 0; i < I; ++i) {
                nnf_index k = (n * C + c) * I + i;
                double xnk = (x[k] - mu) / s;
                CHECK(close_rel(out[k], g[c] * xnk + b[c], 1e-12), "bn out at %lld", (long long)k);
                sdo += x[k];
                sdoxn += x[k] * xnk;
            }
        CHECK(close_rel(db[c], sdo, 1e-11) && close_rel(dg[c], sdoxn, 1e-11), "bn dgamma/dbeta");
        /* closed form: dx = gamma/std * (dout - mean(dout) - xn*mean(dout*xn)) */
        for (nnf_index n = 0; n < N; ++n)
            for (nnf_index i = 0; i < I; ++i) {
                nnf_index k = (n * C + c) * I + i;
                double xnk = (x[k] - mu) / s;
                double want = g[c] / s * (x[k] - sdo / M - xnk * sdoxn / M);
                CHECK(fabs(dx[k] - want) <= 1e-9 * (1 + fabs(want)), "bn dx at %lld", (long long)k);
            }
    }
    free(x); free(out); free(xc); free(xn); free(dx); free(g); free(b); free(z); free(std);
    free(rm); free(rv); free(dg); free(db);
}

static void test_optim(int threads)
{
    enum { n = 200000 };
    double *p = malloc(sizeof(double) * n), *g = malloc(sizeof(double) * n);
    double *m = calloc(n, sizeof(double)), *v = calloc(n, sizeof(double));
    double *pn = malloc(sizeof(double) * n), *mn = calloc(n, sizeof(double)), *vn = calloc(n, sizeof(double));
    for (nnf_index i = 0; i < n; ++i) { p[i] = pn[i] = val(i); g[i] = val(i + 3) * 0.1; }
    for (int it = 1; it <= 3; ++it) {
        double lr_t = 0.001 * sqrt(1.0 - pow(0.999, it)) / (1.0 - pow(0.9, it));
        nnf_adam_f64(p, g, m, v, n, lr_t, 0.9, 0.999, threads);
        for (nnf_index i = 0; i < n; ++i) { /* naive loop, one operation per statement */
            double d = g[i] - mn[i];
            d = (1.0 - 0.9) * d;
            mn[i] = mn[i] + d;
            double gg = g[i] * g[i];
            gg = gg - vn[i];
            gg = (1.0 - 0.999) * gg;
            vn[i] = vn[i] + gg;
            double num = lr_t * mn[i];
            double den = sqrt(vn[i]);
            den = den + 1e-7;
            pn[i] = pn[i] - num / den;
        }
    }
    CHECK(memcmp(p, pn, sizeof(double) * n) == 0, "adam not bit-exact against the naive loop");
    for (nnf_index i = 0; i < n; ++i) { p[i] = pn[i] = val(i); v[i] = vn[i] = 0.0; }
    for (int it = 0; it < 3; ++it) {
        nnf_nesterov_f64(p, g, v, n, 0.01, 0.9, threads);
        for (nnf_index i = 0; i < n; ++i) {
            double a = 0.9 * 0.9;
            a = a * vn[i];
            pn[i] = pn[i] + a;
            double b = (1.0 + 0.9) * 0.01;
            b = b * g[i];
            pn[i] = pn[i] - b;
            vn[i] = vn[i] * 0.9;
            double c = 0.01 * g[i];
            vn[i] = vn[i] - c;
        }
    }
    CHECK(memcmp(p, pn, sizeof(double) * n) == 0, "nesterov not bit-exact against the naive loop");
    free(p); free(g); free(m); free(v); free(pn); free(mn); free(vn);
}

int main(void)
{
    /* every build of the element-wise families this CPU has (isa.h) */
    for (int isa = NNF_ISA_BASE; isa <= nnf_cpu_isa(); ++isa)
    for (int t = 1; t <= 2; ++t) {
        if (nnf_isa_force(isa) != isa) { printf("isa %d not selected\n", isa); return 1; }
        test_eltwise(t);
        test_affine(t);
        test_softmax_xent(t);
        test_batchnorm(t, 7, 300, 1);   /* per feature, more than one channel block */
        test_batchnorm(t, 3, 4, 25);    /* per channel (spatial) */
        test_batchnorm(t, 64, 600, 1);  /* large enough to run in parallel */
        test_optim(t);
    }
    printf("%d failed\n", failures);
    return failures != 0;
}
