/* The one definition of a member's coordinate: mean + scale * z, z the member's standard noise
 * (esm_es_noise_range). The ES object (es.c), the CPU evaluator and the CUDA kernels all build
 * members through it, so they agree to the bit: the host compiles with -ffp-contract=off, and
 * device code rounds the product and the sum separately, as the host does. */
#ifndef ESM_ES_MEMBER_H
#define ESM_ES_MEMBER_H

#ifdef __CUDACC__
#define ESM_MEMBER_FN static __host__ __device__ __forceinline__
#else
#define ESM_MEMBER_FN static inline
#endif

ESM_MEMBER_FN float esm_member_coord(float mean, float scale, float z)
{
#ifdef __CUDA_ARCH__
    return __fadd_rn(mean, __fmul_rn(scale, z));
#else
    return mean + scale * z;
#endif
}

#endif
