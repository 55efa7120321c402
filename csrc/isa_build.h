/* isa_build.h - for the per-ISA builds of the element-wise families only (see isa.h).
 * Before including a <family>_build.h, a build file defines NNF_ISA_TAG (_base, _avx2 or
 * _avx512); every kernel it builds is named <entry point><NNF_ISA_TAG>. */
#ifndef NNFAST_ISA_BUILD_H
#define NNFAST_ISA_BUILD_H

#include "isa.h"

#define NNF_ISA_CAT2(a, b) a##b
#define NNF_ISA_CAT(a, b) NNF_ISA_CAT2(a, b)

/* X-macros over a family's NNF_<FAMILY>_FUNCS list: */
/* the entry point's definition (in the baseline build only), starting at the baseline kernel */
#define NNF_ISA_DEFINE(name) __typeof__(name) name = NNF_ISA_CAT(name, _base);
/* point an entry point at this build's kernel */
#define NNF_ISA_ASSIGN(name) name = NNF_ISA_CAT(name, NNF_ISA_TAG);
/* void nnf_install_<family><NNF_ISA_TAG>(void): point the family's entry points at this build */
#define NNF_ISA_INSTALLER(family, LIST)                                    \
    void NNF_ISA_CAT(nnf_install_##family, NNF_ISA_TAG)(void);             \
    void NNF_ISA_CAT(nnf_install_##family, NNF_ISA_TAG)(void) { LIST(NNF_ISA_ASSIGN) }

/* for (i = 0; i < n; ++i) BODY, split over n_threads when PARALLEL holds, else a plain loop
 * that never enters OpenMP (a region its if() keeps on one thread still costs about a
 * microsecond: most of a tiny call). */
#define NNF_FOR_I(PARALLEL, ...)                                                         \
    do {                                                                                 \
        if (PARALLEL) {                                                                  \
            _Pragma("omp parallel for schedule(static) num_threads(n_threads)")          \
            for (nnf_index i = 0; i < n; ++i) __VA_ARGS__                                \
        } else {                                                                         \
            for (nnf_index i = 0; i < n; ++i) __VA_ARGS__                                \
        }                                                                                \
    } while (0)

#endif
