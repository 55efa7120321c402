/* isa.c - the run-time choice of the element-wise builds (isa.h). */
#include <string.h>

#include "isa.h"

/* The dispatched families, each with the highest build it prefers: all builds give the same
 * bits, so a family may stay below the CPU's best where that build measured slower (pool:
 * GCC's AVX-512 code for the 2x2 windows ran 3-4x slower than its AVX2 code on Zen 4). */
#define NNF_ISA_FAMILIES(X)                                                                  \
    X(eltwise, NNF_ISA_AVX512) X(batchnorm, NNF_ISA_AVX512) X(softmax_xent, NNF_ISA_AVX512) \
    X(pool, NNF_ISA_AVX2) X(optim, NNF_ISA_AVX512) X(affine, NNF_ISA_AVX512)

#define NNF_DECLARE_BASE(f, cap) void nnf_install_##f##_base(void);
NNF_ISA_FAMILIES(NNF_DECLARE_BASE)
#ifdef NNF_DCONV_X86
#define NNF_DECLARE_VEC(f, cap) void nnf_install_##f##_avx2(void); void nnf_install_##f##_avx512(void);
NNF_ISA_FAMILIES(NNF_DECLARE_VEC)
#endif

enum {
#define NNF_INDEX(f, cap) NNF_FAMILY_##f,
    NNF_ISA_FAMILIES(NNF_INDEX)
    NNF_FAMILY_COUNT
};
static const char *const family_names[NNF_FAMILY_COUNT] = {
#define NNF_NAME(f, cap) #f,
    NNF_ISA_FAMILIES(NNF_NAME)
};
static const int family_caps[NNF_FAMILY_COUNT] = {
#define NNF_CAP(f, cap) cap,
    NNF_ISA_FAMILIES(NNF_CAP)
};
static int family_level[NNF_FAMILY_COUNT]; /* all NNF_ISA_BASE (0) at load */
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

static void install(int family, int level)
{
    switch (family) {
#ifdef NNF_DCONV_X86
#define NNF_CASE(f, cap)                                                                     \
    case NNF_FAMILY_##f:                                                                     \
        if (level == NNF_ISA_AVX512) nnf_install_##f##_avx512();                             \
        else if (level == NNF_ISA_AVX2) nnf_install_##f##_avx2();                            \
        else nnf_install_##f##_base();                                                       \
        break;
#else
#define NNF_CASE(f, cap) case NNF_FAMILY_##f: nnf_install_##f##_base(); break;
#endif
    NNF_ISA_FAMILIES(NNF_CASE)
    default: break;
    }
    family_level[family] = level;
}

static int select_levels(int level, int exact)
{
    const int best = nnf_cpu_isa();
    const int use = level < 0 || level > best ? best : level;
    for (int f = 0; f < NNF_FAMILY_COUNT; ++f)
        install(f, exact || use <= family_caps[f] ? use : family_caps[f]);
    selected = use;
    return use;
}

int nnf_isa_select(int level) { return select_levels(level, 0); }

int nnf_isa_force(int level) { return select_levels(level, 1); }

int nnf_isa_selected(void) { return selected; }

int nnf_isa_family_level(const char *family)
{
    for (int f = 0; f < NNF_FAMILY_COUNT; ++f)
        if (strcmp(family, family_names[f]) == 0) return family_level[f];
    return -1;
}
