/* softmax_xent_base.c - softmax_xent_build.h built for the baseline ISA; chosen at run time (isa.h). */
#define NNF_ISA_TAG _base
#include "softmax_xent_build.h"
/* the public entry points, starting at this build */
NNF_SOFTMAX_XENT_FUNCS(NNF_ISA_DEFINE)
NNF_ISA_INSTALLER(softmax_xent, NNF_SOFTMAX_XENT_FUNCS)
