/* common.h - shared definitions for the nnfast C kernels.
 * Kernels take const input pointers, explicit int64_t sizes, and write into
 * buffers the caller owns. Nothing in csrc/ allocates Python objects or raises. */
#ifndef NNFAST_COMMON_H
#define NNFAST_COMMON_H

#include <stdint.h>

typedef int64_t nnf_index;

#if defined(__GNUC__) || defined(__clang__)
#define NNF_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define NNF_RESTRICT __restrict
#else
#define NNF_RESTRICT
#endif

/* Force inlining where a call site passes a constant that should specialise the body. */
#if defined(__GNUC__) || defined(__clang__)
#define NNF_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define NNF_ALWAYS_INLINE static inline
#endif

/* GCC/clang vector extensions (vector_size, __builtin_convertvector) build the direct
 * convolutions (csrc/dconv_*.c, bconv_*.c). Without them (MSVC, or -DNNF_NO_VECTOR_EXT to
 * test that build with GCC) those files compile to nothing, the kernels report
 * NNF_EINVAL and the Python side never plans a direct convolution (nnf_dconv_isa() says
 * "baseline", so every convolution takes im2col + GEMM). */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(NNF_NO_VECTOR_EXT)
#define NNF_HAVE_VECTOR_EXT 1
#else
#define NNF_HAVE_VECTOR_EXT 0
#undef NNF_DCONV_X86 /* no vector builds to select from */
#endif

/* Work (in touched elements) below which a kernel stays serial: opening an
 * OpenMP parallel region costs ~25 us on the 2-core machines we measured. */
#define NNF_PARALLEL_MIN_WORK ((nnf_index)1 << 15)

/* Return codes of kernels that can fail (argument errors are caught at the
 * Python entry point; these guard the C API when called directly). */
enum { NNF_OK = 0, NNF_EINVAL = 1,
       NNF_ENONFINITE = 2 /* a kernel that relies on finite inputs found inf or NaN */ };

#endif
