/* Vectorisable float reductions for the batch-norm and bias loops. A plain `s += x[i]` is one
 * serial dependency chain the compiler may not reorder; eight independent lanes let it use
 * SIMD registers. Segments are short (one image's h*w), so float partials are accurate;
 * callers add them up in double. */
#ifndef ESM_MODEL_REDUCE_H
#define ESM_MODEL_REDUCE_H

#include "core/simd.h"

#define ESM_LANES 8

ESM_INLINE float esm_sum(const float *x, int n)
{
    float acc[ESM_LANES] = {0};
    int i = 0;
    for (; i + ESM_LANES <= n; i += ESM_LANES)
        for (int l = 0; l < ESM_LANES; l++)
            acc[l] += x[i + l];
    float s = 0.0f;
    for (; i < n; i++)
        s += x[i];
    for (int l = 0; l < ESM_LANES; l++)
        s += acc[l];
    return s;
}

/* sum of (x - c)^2 */
ESM_INLINE float esm_sum_sq_dev(const float *x, int n, float c)
{
    float acc[ESM_LANES] = {0};
    int i = 0;
    for (; i + ESM_LANES <= n; i += ESM_LANES)
        for (int l = 0; l < ESM_LANES; l++) {
            float d = x[i + l] - c;
            acc[l] += d * d;
        }
    float s = 0.0f;
    for (; i < n; i++)
        s += (x[i] - c) * (x[i] - c);
    for (int l = 0; l < ESM_LANES; l++)
        s += acc[l];
    return s;
}

/* sum of x*(y - c) */
ESM_INLINE float esm_dot_dev(const float *x, const float *y, int n, float c)
{
    float acc[ESM_LANES] = {0};
    int i = 0;
    for (; i + ESM_LANES <= n; i += ESM_LANES)
        for (int l = 0; l < ESM_LANES; l++)
            acc[l] += x[i + l] * (y[i + l] - c);
    float s = 0.0f;
    for (; i < n; i++)
        s += x[i] * (y[i] - c);
    for (int l = 0; l < ESM_LANES; l++)
        s += acc[l];
    return s;
}

#endif
