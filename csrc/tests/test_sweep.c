/* test_sweep.c - every csrc entry point, float and double, 1 and 2 threads, over small
 * grids of shapes (empty ones included), on exactly-sized heap buffers: the memory-safety
 * sweep that scripts/sanitize.sh runs under ASan/UBSan. Also: refused geometry and labels
 * leave outputs untouched, col2im is im2col's adjoint, size arithmetic cannot overflow.
 * Build: cmake -S . -B build/ctest -DNNFAST_BUILD_CTESTS=ON && cmake --build build/ctest && ctest --test-dir build/ctest */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "affine.h"
#include "batchnorm.h"
#include "conv.h"
#include "dconv.h"
#include "eltwise.h"
#include "im2col.h"
#include "optim.h"
#include "pool.h"
#include "softmax_xent.h"
#include "threads.h"

static int failures = 0;
static long cases = 0;

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

#define T float
#define SFX f32
#include "sweep_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "sweep_impl.h"
#undef T
#undef SFX

static void test_out_size_overflow(void)
{
    /* in + 2*pad would overflow int64: refused instead of wrapping around */
    CHECK(nnf_conv_out_size(2, 3, 1, INT64_MAX / 2) == -1, "pad overflow accepted");
    CHECK(nnf_conv_out_size(INT64_MAX, 1, 1, 1) == -1, "in + 2 overflow accepted");
    CHECK(nnf_conv_out_size(5, 3, 1, 1) == 5, "conv_out_size(5, 3, 1, 1)");
    CHECK(nnf_conv_out_size(5, 3, 0, 1) == -1 && nnf_conv_out_size(5, 0, 1, 1) == -1 &&
          nnf_conv_out_size(5, 3, 1, -1) == -1 && nnf_conv_out_size(-1, 1, 1, 0) == -1,
          "invalid geometry accepted");
}

int main(void)
{
    test_out_size_overflow();
    for (int isa = NNF_ISA_BASE; isa <= nnf_cpu_isa(); ++isa)
    for (int threads = 1; threads <= 2; ++threads) {
        nnf_isa_force(isa); /* the element-wise families on every build this CPU has */
        sweep_geometry_f32(threads);
        sweep_geometry_f64(threads);
        sweep_conv_f32(threads);
        sweep_conv_f64(threads);
        sweep_dconv_f32(threads);
        sweep_dconv_f64(threads);
        sweep_dense_f32(threads);
        sweep_dense_f64(threads);
    }
    printf("test_sweep: %ld cases, OpenMP %d, %d failure(s)\n", cases, nnf_have_openmp(),
           failures);
    return failures ? 1 : 0;
}
