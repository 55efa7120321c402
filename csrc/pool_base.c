/* pool_base.c - pool_build.h built for the baseline ISA; chosen at run time (isa.h). */
#define NNF_ISA_TAG _base
#include "pool_build.h"
/* the public entry points, starting at this build */
NNF_POOL_FUNCS(NNF_ISA_DEFINE)
NNF_ISA_INSTALLER(pool, NNF_POOL_FUNCS)
