/* batchnorm_base.c - batchnorm_build.h built for the baseline ISA; chosen at run time (isa.h). */
#define NNF_ISA_TAG _base
#include "batchnorm_build.h"
/* the public entry points, starting at this build */
NNF_BATCHNORM_FUNCS(NNF_ISA_DEFINE)
NNF_ISA_INSTALLER(batchnorm, NNF_BATCHNORM_FUNCS)
