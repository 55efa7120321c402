/* isa.h - instruction-set levels, and the one run-time choice of the element-wise kernel
 * builds. The families eltwise, batchnorm, softmax_xent, pool, optim and affine are each
 * compiled three times (<family>_base.c, _avx2.c, _avx512.c, each with its own compiler
 * flags and never -march=native); their public entry points are function pointers that
 * start at the baseline build and that nnf_isa_select() points at one build for all of them.
 * Every build performs the same IEEE operations in the same order per element (no FMA
 * contraction, reductions in one fixed order), so every level gives the same bits. */
#ifndef NNFAST_ISA_H
#define NNFAST_ISA_H

/* Instruction-set levels of the kernels. */
enum { NNF_ISA_BASE = 0, NNF_ISA_AVX2 = 1, NNF_ISA_AVX512 = 2 };

/* The best level of the element-wise builds that this build and this CPU support
 * (AVX2 needs AVX2 and FMA; AVX-512 needs AVX-512 F, BW, DQ and VL). */
int nnf_cpu_isa(void);

/* Points every dispatched entry point at one build: the best supported one if level < 0,
 * else min(level, nnf_cpu_isa()), each family capped at the highest build it prefers (see
 * isa.c: one that measured slower than a lower one is not used). Returns the level asked
 * for, after those limits. Not thread-safe: call it before other threads run kernels
 * (nnfast calls it once, at import). */
int nnf_isa_select(int level);

/* The same without the families' preferences: every family at exactly that level (the
 * tests use it to run every build). */
int nnf_isa_force(int level);

/* The level selected last (NNF_ISA_BASE before any call). */
int nnf_isa_selected(void);

/* The build one family ("eltwise", "batchnorm", "softmax_xent", "pool", "optim",
 * "affine") runs now, or -1 for an unknown name. */
int nnf_isa_family_level(const char *family);

#endif
