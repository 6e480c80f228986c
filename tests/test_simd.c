/* The hot loops run as AVX2 / AVX-512 clones where the CPU has them (src/core/simd.h). This file
 * is built without clones, so its plain loops are the baseline's arithmetic: a clone that fused
 * scale*z + shift into an FMA, or reordered a comparison, would differ here in the last bit. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"
#include "model/ws.h" /* the forward's two-half ReLU + pool */

static float plain_act(float z, float g, float b)
{
    volatile float prod = g * z; /* volatile: never contracted with the add */
    return prod + b;
}

/* The net's forward runs ReLU + pool in two halves (pool-window extremes, then the affine map):
 * out = that of esm_affine_relu_pool_forward. */
static void relu_pool_halves(const float *z, const float *scale, const float *shift, int n, int c, int h, int w,
                             float *ext, float *out)
{
    size_t hwo = (size_t)(h / 2) * (w / 2), planes = (size_t)n * c;
    esm_pool_extremes(z, n, c, h, w, ext, ext + planes * hwo);
    esm_affine_relu_pooled(ext, ext + planes * hwo, hwo, scale, shift, n, c, (int)hwo, out);
}

/* Pooled outputs (one-pass form, then the two halves) and gradients of n images of c channels
 * (h, w) that differ from the plain loop's bits, as {forward, backward, halves} counts. */
static void relu_pool_mismatches(int n, int c, int h, int w, uint64_t seed, int bad[3])
{
    int ho = h / 2, wo = w / 2;
    size_t zin = (size_t)n * c * h * w, zout = (size_t)n * c * ho * wo;
    float *z = malloc(sizeof(float) * zin), *d_out = malloc(sizeof(float) * zout);
    float *out = malloc(sizeof(float) * zout), *d_y = malloc(sizeof(float) * zin);
    float *want_dy = malloc(sizeof(float) * (size_t)h * w), *scale = malloc(sizeof(float) * c);
    float *shift = malloc(sizeof(float) * c), *halves = malloc(sizeof(float) * zout);
    float *ext = malloc(sizeof(float) * 2 * zout);
    bad[0] = bad[1] = bad[2] = -1;
    if (!z || !d_out || !out || !d_y || !want_dy || !scale || !shift || !halves || !ext)
        goto done;
    esm_gauss_fill(seed, 0, 0, z, zin);
    esm_gauss_fill(seed, 1, 0, d_out, zout);
    esm_gauss_fill(seed, 2, 0, scale, c);
    esm_gauss_fill(seed, 3, 0, shift, c);
    esm_affine_relu_pool_forward(z, scale, shift, n, c, h, w, out);
    esm_affine_relu_pool_backward(z, scale, shift, d_out, n, c, h, w, d_y);
    relu_pool_halves(z, scale, shift, n, c, h, w, ext, halves);
    bad[0] = bad[1] = bad[2] = 0;
    for (int i = 0; i < n * c; i++) {
        const float *src = z + (size_t)i * h * w;
        float g = scale[i % c], b = shift[i % c];
        memset(want_dy, 0, sizeof(float) * (size_t)h * w);
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                int best = 2 * oy * w + 2 * ox;
                float m = plain_act(src[best], g, b);
                int cand[3] = {best + 1, best + w, best + w + 1};
                for (int q = 0; q < 3; q++)
                    if (plain_act(src[cand[q]], g, b) > m)
                        m = plain_act(src[cand[q]], g, b), best = cand[q];
                float want = m > 0.0f ? m : 0.0f;
                bad[0] += memcmp(&want, &out[(size_t)i * ho * wo + oy * wo + ox], sizeof want) != 0;
                bad[2] += memcmp(&want, &halves[(size_t)i * ho * wo + oy * wo + ox], sizeof want) != 0;
                if (m > 0.0f)
                    want_dy[best] = d_out[(size_t)i * ho * wo + oy * wo + ox];
            }
        bad[1] += memcmp(want_dy, d_y + (size_t)i * h * w, sizeof(float) * (size_t)h * w) != 0;
    }
done:
    free(z), free(d_out), free(out), free(d_y), free(want_dy), free(scale), free(shift), free(halves), free(ext);
}

TEST(simd_relu_pool_clone_same_bits_as_plain_loop)
{
    /* odd sizes (floor pooling), the net's 28/14/7/3, and rows wider than the pass's buffer */
    static const int shapes[][4] = {{3, 5, 7, 9}, {2, 3, 28, 28}, {2, 4, 14, 14}, {3, 2, 7, 7},
                                    {2, 3, 3, 3}, {1, 2, 5, 4101}, {1, 1, 300, 10}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *d = shapes[s];
        int bad[3];
        relu_pool_mismatches(d[0], d[1], d[2], d[3], 11 + s, bad);
        CHECKF(bad[0] == 0, "%dx%dx%dx%d: %d pooled outputs differ from the plain loop's bits", d[0], d[1], d[2],
               d[3], bad[0]);
        CHECKF(bad[1] == 0, "%dx%dx%dx%d: %d image-channels' gradients differ from the plain loop's bits", d[0],
               d[1], d[2], d[3], bad[1]);
        CHECKF(bad[2] == 0, "%dx%dx%dx%d: %d outputs of the two halves differ from the plain loop's bits", d[0],
               d[1], d[2], d[3], bad[2]);
    }
}

TEST(simd_relu_pool_halves_carry_nonfinite)
{
    /* z (1,1,2,4): two windows; the second stays finite. A NaN or infinity in the first window, or
     * an activation that overflows at either extreme (scale 1e30 on z = 1e10: +inf; on z = -1e10:
     * -inf, which a ReLU alone would clamp to 0), must give NaN, as the one-pass form does; the
     * scale's sign decides which extreme is the maximum. */
    float z[8] = {1, 2, -3, -4, 3, 0, -5, -6}, ext[4], out[2], one[2];
    float scales[3] = {1.0f, -1.0f, 1e30f};
    float bad_vals[3] = {NAN, INFINITY, -INFINITY};
    for (int s = 0; s < 3; s++) {
        float scale = scales[s], shift = 0.5f;
        /* k < 0: all finite z (k = -2, -3 with scale 1e30: one overflows at the top, at the bottom) */
        for (int k = -3; k < 4 * 3; k++) {
            float zz[8];
            memcpy(zz, z, sizeof z);
            if (k >= 0)
                zz[(k % 4 & 1) + (k % 4 >> 1) * 4] = bad_vals[k / 4];
            if (k == -2)
                zz[0] = 1e10f;
            if (k == -3)
                zz[5] = -1e10f;
            esm_affine_relu_pool_forward(zz, &scale, &shift, 1, 1, 2, 4, one);
            relu_pool_halves(zz, &scale, &shift, 1, 1, 2, 4, ext, out);
            int nonfinite = k >= 0 || (s == 2 && k < -1);
            CHECKF(isnan(out[0]) == nonfinite && isnan(one[0]) == nonfinite,
                   "scale %g, case %d: halves %g, one pass %g", (double)scale, k, (double)out[0], (double)one[0]);
            CHECKF(memcmp(&out[1], &one[1], sizeof out[1]) == 0 || (isnan(out[1]) && isnan(one[1])),
                   "scale %g, case %d: second window %g, one pass %g", (double)scale, k, (double)out[1],
                   (double)one[1]);
        }
    }
}
