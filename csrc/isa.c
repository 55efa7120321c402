/* isa.c - the run-time choice of the element-wise builds (isa.h). */
#include "isa.h"

/* the dispatched families; each has an installer per build (NNF_ISA_INSTALLER) */
#define NNF_ISA_FAMILIES(X) X(eltwise) X(batchnorm) X(softmax_xent) X(pool) X(optim) X(affine)

#define NNF_DECLARE_BASE(f) void nnf_install_##f##_base(void);
NNF_ISA_FAMILIES(NNF_DECLARE_BASE)
#define NNF_CALL_BASE(f) nnf_install_##f##_base();

#ifdef NNF_DCONV_X86
#define NNF_DECLARE_VEC(f) void nnf_install_##f##_avx2(void); void nnf_install_##f##_avx512(void);
NNF_ISA_FAMILIES(NNF_DECLARE_VEC)
#define NNF_CALL_AVX2(f) nnf_install_##f##_avx2();
#define NNF_CALL_AVX512(f) nnf_install_##f##_avx512();
#endif

static int selected = NNF_ISA_BASE;

int nnf_cpu_isa(void)
{
#if defined(NNF_DCONV_X86) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return NNF_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NNF_ISA_AVX2;
#endif
    return NNF_ISA_BASE;
}

int nnf_isa_select(int level)
{
    const int best = nnf_cpu_isa();
    const int use = level < 0 || level > best ? best : level;
    switch (use) {
#ifdef NNF_DCONV_X86
    case NNF_ISA_AVX512: NNF_ISA_FAMILIES(NNF_CALL_AVX512) break;
    case NNF_ISA_AVX2: NNF_ISA_FAMILIES(NNF_CALL_AVX2) break;
#endif
    default: NNF_ISA_FAMILIES(NNF_CALL_BASE) break;
    }
    selected = use;
    return use;
}

int nnf_isa_selected(void) { return selected; }
