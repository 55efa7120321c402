/* eltwise_base.c - eltwise_build.h built for the baseline ISA; chosen at run time (isa.h). */
#define NNF_ISA_TAG _base
#include "eltwise_build.h"
/* the public entry points, starting at this build */
NNF_ELTWISE_FUNCS(NNF_ISA_DEFINE)
NNF_ISA_INSTALLER(eltwise, NNF_ELTWISE_FUNCS)
