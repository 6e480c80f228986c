/* A block's tail in two halves, so that the pass over the whole conv output happens while it is
 * still in cache (right after its GEMM, before the batch statistics are known), and the pass after
 * the statistics reads a quarter of it twice instead of all of it from memory:
 *   1. esm_pool_extremes: each 2x2 window's largest and smallest conv output;
 *   2. esm_affine_relu_pooled: relu(max(scale*zmax + shift, scale*zmin + shift)).
 * This is maxpool2x2(relu(scale*z + shift)) bit for bit (esm_affine_relu_pool_forward): rounding
 * is monotone, so scale*z + shift is largest at the largest z for scale >= 0 and at the smallest
 * for scale <= 0, and that value is computed exactly as the one-pass form computes it. Non-finite
 * activations still give NaN: a NaN or infinite z makes zmax NaN (each step adds (v - v), 0 for
 * finite v), and an activation that overflows is one of the two extremes, caught by adding
 * (a - a) of both. */
#include "core/simd.h"
#include "ws.h"

#include <string.h>

/* Floats of row extremes one pass keeps on the stack. */
#define EXT_TMP 1024

ESM_HOT void esm_pool_extremes(const float *z, int n, int c, int h, int w, float *zmax, float *zmin)
{
    int ho = h / 2, wo = w / 2, tw = 2 * wo;
    /* rows of the row extremes per pass; a row wider than the buffer takes several passes */
    int rows = tw <= EXT_TMP ? EXT_TMP / tw : 1, cols = tw <= EXT_TMP ? tw : EXT_TMP;
    float tmax[EXT_TMP], tmin[EXT_TMP];
    for (size_t q = 0; q < (size_t)n * c; q++) {
        const float *src = z + q * h * w;
        float *dmax = zmax + q * ho * wo, *dmin = zmin + q * ho * wo;
        for (int oy0 = 0; oy0 < ho; oy0 += rows) {
            int ny = ho - oy0 < rows ? ho - oy0 : rows;
            for (int x0 = 0; x0 < tw; x0 += cols) {
                int nx = tw - x0 < cols ? tw - x0 : cols;
                for (int r = 0; r < ny; r++) {
                    const float *r0 = src + (size_t)(2 * (oy0 + r)) * w + x0, *r1 = r0 + w;
                    float *hi = tmax + (size_t)r * nx, *lo = tmin + (size_t)r * nx;
                    for (int x = 0; x < nx; x++) {
                        float a = r0[x], b = r1[x];
                        hi[x] = (a > b ? a : b) + ((a - a) + (b - b));
                        lo[x] = a < b ? a : b;
                    }
                }
                /* nx is even: the pairs (2k, 2k+1) never straddle two output rows; whole output
                 * rows are contiguous and written in place */
                int np = ny * nx / 2, whole = nx == tw;
                float bufmax[EXT_TMP / 2], bufmin[EXT_TMP / 2];
                float *pmax = whole ? dmax + (size_t)oy0 * wo : bufmax, *pmin = whole ? dmin + (size_t)oy0 * wo : bufmin;
                for (int k = 0; k < np; k++) {
                    float a = tmax[2 * k], b = tmax[2 * k + 1], u = tmin[2 * k], v = tmin[2 * k + 1];
                    pmax[k] = (a > b ? a : b) + ((a - a) + (b - b));
                    pmin[k] = u < v ? u : v;
                }
                for (int r = 0; r < ny && !whole; r++) {
                    size_t at = (size_t)(oy0 + r) * wo + x0 / 2, from = (size_t)r * (nx / 2);
                    memcpy(dmax + at, bufmax + from, (size_t)(nx / 2) * sizeof *dmax);
                    memcpy(dmin + at, bufmin + from, (size_t)(nx / 2) * sizeof *dmin);
                }
            }
        }
    }
}

ESM_HOT void esm_affine_relu_pooled(const float *zmax, const float *zmin, size_t stride, const float *scale,
                                    const float *shift, int n, int c, int hwo, float *out)
{
    for (size_t q = 0; q < (size_t)n * c; q++) {
        const float *hi = zmax + q * stride, *lo = zmin + q * stride;
        float *o = out + q * hwo, g = scale[q % c], b = shift[q % c];
        for (int k = 0; k < hwo; k++) {
            float a0 = g * hi[k] + b, a1 = g * lo[k] + b;
            float m = a0 > a1 ? a0 : a1;
            o[k] = (m > 0.0f ? m : 0.0f) + ((a0 - a0) + (a1 - a1));
        }
    }
}
