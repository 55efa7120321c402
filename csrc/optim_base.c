/* optim_base.c - optim_build.h built for the baseline ISA; chosen at run time (isa.h). */
#define NNF_ISA_TAG _base
#include "optim_build.h"
/* the public entry points, starting at this build */
NNF_OPTIM_FUNCS(NNF_ISA_DEFINE)
NNF_ISA_INSTALLER(optim, NNF_OPTIM_FUNCS)
