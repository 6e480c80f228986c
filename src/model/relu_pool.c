/* The tail of a block, fused with batch norm's folded affine map:
 *     out = maxpool2x2(relu(scale*z + shift))
 * with floor pooling (odd last rows/columns are dropped, as in PyTorch: 7x7 -> 3x3). Fusing
 * means neither the normalised values nor the ReLU output are ever stored; backward
 * recomputes them from z. */
#include "core/simd.h"
#include "esmeta/model.h"

#include <string.h>

/* Floats of vertical maxima one pass of esm_affine_relu_pool_forward keeps on the stack. */
#define POOL_TMP 2048

/* Rows are short (28, 14, 6, 2 floats): the steps below run in fixed-width overlapping blocks
 * (ESM_OVERLAPPED) so that no scalar tail remains. */
/* t[x] = the larger of the two rows' activations, plus (a - a) of both (NaN carrier, below) */
ESM_INLINE void row_max(const float *r0, const float *r1, float g, float b, int at, int len, float *t)
{
    for (int x = at; x < at + len; x++) {
        float a0 = g * r0[x] + b, a1 = g * r1[x] + b;
        t[x] = (a0 > a1 ? a0 : a1) + ((a0 - a0) + (a1 - a1));
    }
}

/* out[k] = relu of the larger of t[2k], t[2k+1], plus (v - v) of both */
ESM_INLINE void pair_max(const float *t, int at, int len, float *out)
{
    for (int k = at; k < at + len; k++) {
        float t0 = t[2 * k], t1 = t[2 * k + 1];
        float m = t0 > t1 ? t0 : t1;
        out[k] = (m > 0.0f ? m : 0.0f) + ((t0 - t0) + (t1 - t1));
    }
}

ESM_INLINE void rows_step(const float *r0, const float *r1, float g, float b, int nx, float *t)
{
#define ROW_STEP(at, len) row_max(r0, r1, g, b, at, len, t)
    if (nx >= 16)
        ESM_OVERLAPPED(16, nx, ROW_STEP);
    else if (nx >= 8)
        ESM_OVERLAPPED(8, nx, ROW_STEP);
    else if (nx >= 4)
        ESM_OVERLAPPED(4, nx, ROW_STEP);
    else
        row_max(r0, r1, g, b, 0, nx, t);
#undef ROW_STEP
}

ESM_INLINE void pairs_step(const float *t, int np, float *out)
{
#define PAIR_STEP(at, len) pair_max(t, at, len, out)
    if (np >= 16)
        ESM_OVERLAPPED(16, np, PAIR_STEP);
    else if (np >= 4)
        ESM_OVERLAPPED(4, np, PAIR_STEP);
    else
        pair_max(t, 0, np, out);
#undef PAIR_STEP
}

/* The window's maximum is taken in two steps that vectorise (contiguous rows, then adjacent
 * pairs): t = the larger of the two rows' activations, then the larger of two adjacent t. Max
 * and relu give the same bits in any order for finite values (only the sign of a zero can
 * differ, and relu maps both zeros to +0). Comparisons drop NaN, so each step adds (a - a), 0
 * for finite a and NaN otherwise: a non-finite activation turns the output into NaN, and a
 * broken member must score NaN (ranked last, counted), not a plausible finite loss. */
ESM_HOT void esm_affine_relu_pool_forward(const float *z, const float *scale, const float *shift, int n, int c, int h,
                                          int w, float *out)
{
    int ho = h / 2, wo = w / 2, tw = 2 * wo;
    /* rows of t per pass; a row wider than the buffer (w > POOL_TMP) takes one pass per half */
    int rows = tw <= POOL_TMP ? POOL_TMP / tw : 1, cols = tw <= POOL_TMP ? tw : POOL_TMP;
    float t[POOL_TMP];
    for (size_t q = 0; q < (size_t)n * c; q++) {
        const float *src = z + q * h * w;
        float *dst = out + q * ho * wo;
        float g = scale[q % c], b = shift[q % c];
        for (int oy0 = 0; oy0 < ho; oy0 += rows) {
            int ny = ho - oy0 < rows ? ho - oy0 : rows;
            for (int x0 = 0; x0 < tw; x0 += cols) {
                int nx = tw - x0 < cols ? tw - x0 : cols;
                for (int r = 0; r < ny; r++) {
                    const float *r0 = src + (size_t)(2 * (oy0 + r)) * w + x0;
                    rows_step(r0, r0 + w, g, b, nx, t + (size_t)r * nx);
                }
                /* nx is even, so the pairs (2k, 2k+1) of t never straddle two output rows; whole
                 * rows of the output are contiguous: written in place */
                float pooled[POOL_TMP / 2], *pd = nx == tw ? dst + (size_t)oy0 * wo : pooled;
                pairs_step(t, ny * nx / 2, pd);
                for (int r = 0; r < ny && pd == pooled; r++)
                    memcpy(dst + (size_t)(oy0 + r) * wo + x0 / 2, pooled + (size_t)r * (nx / 2),
                           (size_t)(nx / 2) * sizeof *dst);
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
