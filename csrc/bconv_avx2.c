/* bconv_avx2.c - bconv_impl.h built for AVX2+FMA: 32-byte vectors, up to 2 channel vectors
 * x 6 positions (16 registers). Selected at run time by bconv.c. */
#include "bconv_isa.h"

#if NNF_HAVE_VECTOR_EXT && defined(__AVX2__) && defined(__FMA__)
#define VBYTES 32
#define MAXACC 12
#define FVMAX 2
#define ISA avx2
#define BC_MADD(a, b, x) ((a) += (b) * (x)) /* contracted into an FMA (-ffp-contract=fast) */

#include "bconv_build.h"
#else
typedef int nnf_bconv_avx2_unused; /* this compiler/target does not build the avx2 path */
#endif
