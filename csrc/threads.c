/* threads.c - OpenMP availability, queried once by nnfast._threads. */
#include "threads.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int nnf_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int nnf_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
