/* bconv_avx512.c - bconv_impl.h built for AVX-512F: 64-byte vectors, up to 4 channel
 * vectors x 6 positions (32 registers). Selected at run time by bconv.c. */
#include "bconv_isa.h"

#if NNF_HAVE_VECTOR_EXT && defined(__AVX512F__)
#define VBYTES 64
#define MAXACC 24
#define FVMAX 4
#define ISA avx512
#define BC_MADD(a, b, x) ((a) += (b) * (x)) /* contracted into an FMA (-ffp-contract=fast) */

#include "bconv_build.h"
#else
typedef int nnf_bconv_avx512_unused; /* this compiler/target does not build the avx512 path */
#endif
