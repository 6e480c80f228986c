/* Compile-time configuration, reported so that users and scripts can tell what a binary can do. */
#include "esmeta/core.h"

#ifndef ESM_VERSION
#define ESM_VERSION "0.0.0-dev"
#endif
#ifndef ESM_HAVE_MPI
#define ESM_HAVE_MPI 0
#endif
#ifndef ESM_HAVE_CUDA
#define ESM_HAVE_CUDA 0
#endif
#ifndef ESM_BLAS_VENDOR
#define ESM_BLAS_VENDOR "none"
#endif

esm_features esm_get_features(void)
{
    esm_features f = {
        .version = ESM_VERSION,
#ifdef _OPENMP
        .openmp = 1,
#else
        .openmp = 0,
#endif
        .mpi = ESM_HAVE_MPI,
        .cuda = ESM_HAVE_CUDA,
        .blas = ESM_BLAS_VENDOR,
    };
    return f;
}
