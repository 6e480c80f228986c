/* The tail of a block, fused with batch norm's folded affine map:
 *     out = maxpool2x2(relu(scale*z + shift))
 * with floor pooling (odd last rows/columns are dropped, as in PyTorch: 7x7 -> 3x3). Fusing
 * means neither the normalised values nor the ReLU output are ever stored; backward
 * recomputes them from z. */
#include "core/simd.h"
#include "esmeta/model.h"

#include <string.h>

ESM_HOT void esm_affine_relu_pool_forward(const float *z, const float *scale, const float *shift, int n, int c, int h,
                                  int w, float *out)
{
    int ho = h / 2, wo = w / 2;
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            const float *src = z + ((size_t)i * c + ch) * h * w;
            float *dst = out + ((size_t)i * c + ch) * ho * wo;
            float g = scale[ch], b = shift[ch];
            for (int oy = 0; oy < ho; oy++) {
                const float *r0 = src + (size_t)(2 * oy) * w, *r1 = r0 + w;
                float *o = dst + (size_t)oy * wo;
                for (int ox = 0; ox < wo; ox++) {
                    float a0 = g * r0[2 * ox] + b, a1 = g * r0[2 * ox + 1] + b;
                    float a2 = g * r1[2 * ox] + b, a3 = g * r1[2 * ox + 1] + b;
                    float m01 = a0 > a1 ? a0 : a1, m23 = a2 > a3 ? a2 : a3;
                    float m = m01 > m23 ? m01 : m23;
                    /* relu commutes with max. Comparisons drop NaN, so (a - a), 0 for finite a
                     * and NaN otherwise, carries a non-finite activation on: a broken member
                     * must score NaN (ranked last, counted), not a plausible finite loss. */
                    float bad = (a0 - a0) + (a1 - a1) + (a2 - a2) + (a3 - a3);
                    o[ox] = (m > 0.0f ? m : 0.0f) + bad;
                }
            }
        }
    }
}

ESM_HOT void esm_affine_relu_pool_backward(const float *z, const float *scale, const float *shift, const float *d_out,
                                   int n, int c, int h, int w, float *d_y)
{
    int ho = h / 2, wo = w / 2;
    memset(d_y, 0, (size_t)n * c * h * w * sizeof *d_y);
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            size_t base = ((size_t)i * c + ch) * h * w;
            const float *src = z + base;
            const float *dout = d_out + ((size_t)i * c + ch) * ho * wo;
            float *dst = d_y + base;
            float g = scale[ch], b = shift[ch];
            for (int oy = 0; oy < ho; oy++) {
                for (int ox = 0; ox < wo; ox++) {
                    /* Window scanned row-major; the first maximum wins, as in PyTorch. A
                     * non-positive maximum means relu was flat: no gradient at all. */
                    int at = 2 * oy * w + 2 * ox;
                    int idx[4] = {at, at + 1, at + w, at + w + 1};
                    int best = idx[0];
                    float m = g * src[best] + b;
                    for (int q = 1; q < 4; q++) {
                        float v = g * src[idx[q]] + b;
                        if (v > m) {
                            m = v;
                            best = idx[q];
                        }
                    }
                    if (m > 0.0f)
                        dst[best] = dout[oy * wo + ox];
                }
            }
        }
    }
}
