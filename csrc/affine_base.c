/* affine_base.c - affine_build.h built for the baseline ISA; chosen at run time (isa.h). */
#define NNF_ISA_TAG _base
#include "affine_build.h"
/* the public entry points, starting at this build */
NNF_AFFINE_FUNCS(NNF_ISA_DEFINE)
NNF_ISA_INSTALLER(affine, NNF_AFFINE_FUNCS)
