/* The hot loops run as AVX2 / AVX-512 clones where the CPU has them (src/core/simd.h). This file
 * is built without clones, so its plain loops are the baseline's arithmetic: a clone that fused
 * scale*z + shift into an FMA, or reordered a comparison, would differ here in the last bit. */
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

enum { N = 3, C = 5, H = 7, W = 9, HO = H / 2, WO = W / 2 };

static float plain_act(float z, float g, float b)
{
    volatile float prod = g * z; /* volatile: never contracted with the add */
    return prod + b;
}

TEST(simd_relu_pool_clone_same_bits_as_plain_loop)
{
    float *z = malloc(sizeof(float) * N * C * H * W), *d_out = malloc(sizeof(float) * N * C * HO * WO);
    float *out = malloc(sizeof(float) * N * C * HO * WO), *d_y = malloc(sizeof(float) * N * C * H * W);
    float scale[C], shift[C];
    REQUIRE(z && d_out && out && d_y);
    esm_gauss_fill(11, 0, 0, z, (size_t)N * C * H * W);
    esm_gauss_fill(11, 1, 0, d_out, (size_t)N * C * HO * WO);
    esm_gauss_fill(11, 2, 0, scale, C);
    esm_gauss_fill(11, 3, 0, shift, C);
    esm_affine_relu_pool_forward(z, scale, shift, N, C, H, W, out);
    esm_affine_relu_pool_backward(z, scale, shift, d_out, N, C, H, W, d_y);
    int fwd_bad = 0, bwd_bad = 0;
    for (int i = 0; i < N * C; i++) {
        const float *src = z + (size_t)i * H * W;
        float g = scale[i % C], b = shift[i % C];
        float want_dy[H * W] = {0};
        for (int oy = 0; oy < HO; oy++)
            for (int ox = 0; ox < WO; ox++) {
                int best = 2 * oy * W + 2 * ox;
                float m = plain_act(src[best], g, b);
                int cand[3] = {best + 1, best + W, best + W + 1};
                for (int q = 0; q < 3; q++)
                    if (plain_act(src[cand[q]], g, b) > m)
                        m = plain_act(src[cand[q]], g, b), best = cand[q];
                float want = m > 0.0f ? m : 0.0f;
                fwd_bad += memcmp(&want, &out[(size_t)i * HO * WO + oy * WO + ox], sizeof want) != 0;
                if (m > 0.0f)
                    want_dy[best] = d_out[(size_t)i * HO * WO + oy * WO + ox];
            }
        bwd_bad += memcmp(want_dy, d_y + (size_t)i * H * W, sizeof want_dy) != 0;
    }
    CHECKF(fwd_bad == 0, "%d pooled outputs differ from the plain loop's bits", fwd_bad);
    CHECKF(bwd_bad == 0, "%d image-channels' gradients differ from the plain loop's bits", bwd_bad);
    free(z), free(d_out), free(out), free(d_y);
}
