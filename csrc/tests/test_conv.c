/* test_conv.c - plain-C checks of the convolution epilogue and db reduction against loops.
 * Build: cmake -S . -B build/ctest -DNNFAST_BUILD_CTESTS=ON && cmake --build build/ctest && ctest --test-dir build/ctest */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "conv.h"

static int failures = 0;

static void check(nnf_index N, nnf_index FN, nnf_index P, int threads)
{
    nnf_index M = N * P;
    double *rows = malloc(sizeof(double) * M * FN), *b = malloc(sizeof(double) * FN);
    double *out = malloc(sizeof(double) * M * FN), *back = malloc(sizeof(double) * M * FN);
    double *db = malloc(sizeof(double) * FN), *db2 = malloc(sizeof(double) * FN);
    double *partial = malloc(sizeof(double) * N * FN);
    if (!rows || !b || !out || !back || !db || !db2 || !partial) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (nnf_index k = 0; k < M * FN; ++k) rows[k] = (double)((k * 7919) % 101) / 8.0 - 6.0;
    for (nnf_index f = 0; f < FN; ++f) b[f] = (double)f - 1.5;
    nnf_conv_bias_nchw_f64(rows, b, N, FN, P, out, threads);
    for (nnf_index n = 0; n < N; ++n)
        for (nnf_index f = 0; f < FN; ++f)
            for (nnf_index p = 0; p < P; ++p)
                if (out[(n * FN + f) * P + p] != rows[(n * P + p) * FN + f] + b[f]) {
                    if (failures++ < 10) fprintf(stderr, "bias epilogue mismatch\n");
                }
    /* the adjoint layout pass: out (N, FN, P) back to rows, with db */
    nnf_conv_bwd_rows_db_f64(out, N, FN, P, back, db, partial, threads);
    nnf_conv_bwd_rows_db_f64(out, N, FN, P, NULL, db2, partial, threads);
    for (nnf_index f = 0; f < FN; ++f) {
        double want = 0;
        for (nnf_index r = 0; r < M; ++r) want += rows[r * FN + f] + b[f];
        if (fabs(db[f] - want) > 1e-12 * (1 + fabs(want)) || db2[f] != db[f]) {
            if (failures++ < 10) fprintf(stderr, "db mismatch at %lld\n", (long long)f);
        }
    }
    for (nnf_index k = 0; k < M * FN; ++k)
        if (back[k] != rows[k] + b[k % FN]) {
            if (failures++ < 10) fprintf(stderr, "rows mismatch at %lld\n", (long long)k);
        }
    free(rows); free(b); free(out); free(back); free(db); free(db2); free(partial);
}

int main(void)
{
    const nnf_index shapes[][3] = {{1, 1, 1}, {1, 3, 65}, {2, 5, 64}, {3, 7, 130}, {100, 30, 576}};
    for (size_t g = 0; g < sizeof shapes / sizeof shapes[0]; ++g)
        for (int t = 1; t <= 2; ++t) check(shapes[g][0], shapes[g][1], shapes[g][2], t);
    printf("%d failed\n", failures);
    return failures != 0;
}
