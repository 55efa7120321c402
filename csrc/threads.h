/* threads.h - what the build knows about OpenMP. */
#ifndef NNFAST_THREADS_H
#define NNFAST_THREADS_H

/* 1 if the kernels were compiled with OpenMP, else 0. */
int nnf_have_openmp(void);
/* omp_get_max_threads() (honours OMP_NUM_THREADS), or 1 without OpenMP. */
int nnf_max_threads(void);

#endif
