/* The hot loops run as AVX2 / AVX-512 clones where the CPU has them (src/core/simd.h). This file
 * is built without clones, so its plain loops are the baseline's arithmetic: a clone that fused
 * scale*z + shift into an FMA, or reordered a comparison, would differ here in the last bit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"
#include "model/ws.h" /* esm_batchnorm_segments */

static float plain_act(float z, float g, float b)
{
    volatile float prod = g * z; /* volatile: never contracted with the add */
    return prod + b;
}

/* Pooled outputs and gradients of n images of c channels (h, w) that differ from the plain
 * loop's bits, as {forward, backward} counts. */
static void relu_pool_mismatches(int n, int c, int h, int w, uint64_t seed, int bad[2])
{
    int ho = h / 2, wo = w / 2;
    size_t zin = (size_t)n * c * h * w, zout = (size_t)n * c * ho * wo;
    float *z = malloc(sizeof(float) * zin), *d_out = malloc(sizeof(float) * zout);
    float *out = malloc(sizeof(float) * zout), *d_y = malloc(sizeof(float) * zin);
    float *want_dy = malloc(sizeof(float) * (size_t)h * w), *scale = malloc(sizeof(float) * c);
    float *shift = malloc(sizeof(float) * c);
    bad[0] = bad[1] = -1;
    if (!z || !d_out || !out || !d_y || !want_dy || !scale || !shift)
        goto done;
    esm_gauss_fill(seed, 0, 0, z, zin);
    esm_gauss_fill(seed, 1, 0, d_out, zout);
    esm_gauss_fill(seed, 2, 0, scale, c);
    esm_gauss_fill(seed, 3, 0, shift, c);
    esm_affine_relu_pool_forward(z, scale, shift, n, c, h, w, out);
    esm_affine_relu_pool_backward(z, scale, shift, d_out, n, c, h, w, d_y);
    bad[0] = bad[1] = 0;
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
                if (m > 0.0f)
                    want_dy[best] = d_out[(size_t)i * ho * wo + oy * wo + ox];
            }
        bad[1] += memcmp(want_dy, d_y + (size_t)i * h * w, sizeof(float) * (size_t)h * w) != 0;
    }
done:
    free(z), free(d_out), free(out), free(d_y), free(want_dy), free(scale), free(shift);
}

TEST(simd_relu_pool_clone_same_bits_as_plain_loop)
{
    /* odd sizes (floor pooling), the net's 28/14/7/3, and rows wider than the pass's buffer */
    static const int shapes[][4] = {{3, 5, 7, 9}, {2, 3, 28, 28}, {2, 4, 14, 14}, {3, 2, 7, 7},
                                    {2, 3, 3, 3}, {1, 2, 5, 4101}, {1, 1, 300, 10}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *d = shapes[s];
        int bad[2];
        relu_pool_mismatches(d[0], d[1], d[2], d[3], 11 + s, bad);
        CHECKF(bad[0] == 0, "%dx%dx%dx%d: %d pooled outputs differ from the plain loop's bits", d[0], d[1], d[2],
               d[3], bad[0]);
        CHECKF(bad[1] == 0, "%dx%dx%dx%d: %d image-channels' gradients differ from the plain loop's bits", d[0],
               d[1], d[2], d[3], bad[1]);
    }
}

TEST(simd_batchnorm_segments_four_at_once_same_bits_as_one)
{
    /* esm_batchnorm_segments takes image-channel segments four at a time; each must get the bits
     * of the same segment taken alone. Lengths: the net's planes and ones with a tail past the
     * lanes. */
    static const int lens[] = {784, 196, 49, 9, 3, 8, 13};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int hw = lens[k], n = 3, c = 3; /* 9 segments: two groups of four and one alone */
        float *z = malloc(sizeof(float) * (size_t)n * c * hw), seg[18], one[2];
        REQUIRE(z);
        esm_gauss_fill(31, (uint32_t)k, 0, z, (size_t)n * c * hw);
        for (int i = 0; i < n * c * hw; i++)
            z[i] = 3.0f + 2.0f * z[i];
        esm_batchnorm_segments(z, n, c, hw, seg);
        int bad = 0;
        for (int q = 0; q < n * c; q++) {
            esm_batchnorm_segments(z + (size_t)q * hw, 1, 1, hw, one);
            bad += memcmp(one, seg + 2 * q, sizeof one) != 0;
        }
        CHECKF(bad == 0, "segments of %d values: %d of %d differ from the same segment alone", hw, bad, n * c);
        free(z);
    }
}
