/* The direct 3x3 conv (src/model/conv_direct.c) against a plain double-precision conv, for every
 * variant this CPU runs, on the nets' shapes and odd ones: widths 3..64, 1..32 input channels,
 * images from 1x1 to 84x84 (fewer pixels than a vector, sizes no vector width divides). */
#include "harness.h"
#include "model/ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static float *random_floats(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(seed >> 40) / (double)(1 << 24) * 2.0 - 1.0);
    }
    return x;
}

/* out (cout, h, w) of one image inp (cin, h, w), and mag = the sum of |terms| per output (the
 * scale of its rounding error) */
static void conv_reference(const float *inp, const float *wgt, const float *bias, int cin, int cout, int h, int w,
                           double *out, double *mag)
{
    for (int co = 0; co < cout; co++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double s = bias ? bias[co] : 0.0, m = bias ? fabs(bias[co]) : 0.0;
                for (int ci = 0; ci < cin; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int sy = y + ky - 1, sx = x + kx - 1;
                            if (sy < 0 || sy >= h || sx < 0 || sx >= w)
                                continue;
                            double t = (double)wgt[((co * cin + ci) * 3 + ky) * 3 + kx] *
                                       inp[((size_t)ci * h + sy) * w + sx];
                            s += t;
                            m += fabs(t);
                        }
                size_t q = ((size_t)co * h + y) * w + x;
                out[q] = s;
                mag[q] = m;
            }
}

/* Mismatches of n images' direct conv (variant v) against the reference; the conv from
 * precomputed padded planes (one image at a time, as block 0's lowered input) must also give the
 * same bits as from the images (stacked when small). */
static int mismatches(int v, int n, int cin, int cout, int h, int w, int with_bias, uint64_t seed)
{
    size_t img = (size_t)cin * h * w, oimg = (size_t)cout * h * w, pf = esm_conv3x3_plane_floats(cin, h, w);
    float *x = random_floats(n * img, seed), *wgt = random_floats((size_t)cout * cin * 9, seed + 1);
    float *bias = random_floats(cout, seed + 2), *out = malloc(n * oimg * sizeof *out);
    float *out2 = malloc(n * oimg * sizeof *out2), *planes = malloc((n * pf + 2 * ESM_CONV_SLACK) * sizeof *planes);
    float *scratch = malloc(esm_conv3x3_direct_scratch(cin, cout, h, w) * sizeof *scratch);
    double *ref = malloc(oimg * sizeof *ref), *mag = malloc(oimg * sizeof *mag);
    int bad = -1;
    if (x && wgt && bias && out && out2 && planes && scratch && ref && mag) {
        const float *b = with_bias ? bias : NULL;
        esm_conv3x3_direct(v, x, NULL, wgt, b, n, cin, cout, h, w, scratch, out);
        esm_conv3x3_planes_slack(planes);
        for (int i = 0; i < n; i++)
            esm_conv3x3_planes(x + i * img, cin, h, w, planes + ESM_CONV_SLACK + i * pf);
        esm_conv3x3_planes_slack(planes + ESM_CONV_SLACK + n * pf);
        esm_conv3x3_direct(v, NULL, planes + ESM_CONV_SLACK, wgt, b, n, cin, cout, h, w, scratch, out2);
        bad = memcmp(out, out2, n * oimg * sizeof *out) != 0;
        for (int i = 0; i < n; i++) {
            conv_reference(x + i * img, wgt, b, cin, cout, h, w, ref, mag);
            for (size_t q = 0; q < oimg; q++)
                bad += !(fabs(out[i * oimg + q] - ref[q]) <= 4e-7 * (mag[q] + 1e-3));
        }
    }
    free(x), free(wgt), free(bias), free(out), free(out2), free(planes), free(scratch), free(ref), free(mag);
    return bad;
}

TEST(conv_direct_matches_reference)
{
    static const struct {
        int n, cin, cout, h, w;
    } cases[] = {
        {3, 1, 16, 28, 28}, {2, 16, 16, 14, 14}, {2, 16, 16, 7, 7}, {3, 16, 16, 3, 3}, {2, 1, 32, 28, 28},
        {2, 32, 32, 14, 14}, {2, 32, 32, 7, 7}, {2, 32, 32, 3, 3}, {2, 1, 8, 28, 28}, {2, 8, 8, 14, 14},
        {2, 8, 8, 3, 3}, {1, 1, 64, 28, 28}, {1, 64, 64, 14, 14}, {2, 64, 64, 3, 3}, {1, 3, 32, 84, 84},
        {1, 3, 16, 21, 21}, {2, 32, 16, 5, 6}, {2, 3, 3, 6, 5}, {3, 2, 5, 1, 1}, {2, 4, 7, 2, 3},
        {2, 16, 64, 4, 4}, {1, 32, 8, 9, 17}, {20, 16, 16, 7, 7}, {45, 8, 8, 3, 3}, {3, 1, 8, 1, 40},
        {2, 2, 8, 40, 1},
    };
    int best = esm_conv3x3_direct_variant();
    for (int v = ESM_CONV_PLAIN; v <= best; v++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                int bad = mismatches(v, cases[c].n, cases[c].cin, cases[c].cout, cases[c].h, cases[c].w, with_bias,
                                     17 + c);
                CHECKF(bad == 0, "variant %d, n %d, cin %d, cout %d, %dx%d, bias %d: %d mismatches", v, cases[c].n,
                       cases[c].cin, cases[c].cout, cases[c].h, cases[c].w, with_bias, bad);
            }
}

/* Each output is one chain of the image's own taps: an image's bits do not depend on the batch
 * it is convolved in. */
TEST(conv_direct_image_bits_independent_of_batch)
{
    int n = 5, cin = 16, cout = 16, h = 7, w = 7, v = esm_conv3x3_direct_variant();
    size_t img = (size_t)cin * h * w, oimg = (size_t)cout * h * w;
    float *x = random_floats(n * img, 3), *wgt = random_floats((size_t)cout * cin * 9, 4);
    float *all = malloc(n * oimg * sizeof *all), *one = malloc(oimg * sizeof *one);
    float *scratch = malloc(esm_conv3x3_direct_scratch(cin, cout, h, w) * sizeof *scratch);
    REQUIRE(x && wgt && all && one && scratch);
    esm_conv3x3_direct(v, x, NULL, wgt, NULL, n, cin, cout, h, w, scratch, all);
    for (int i = 0; i < n; i++) {
        esm_conv3x3_direct(v, x + i * img, NULL, wgt, NULL, 1, cin, cout, h, w, scratch, one);
        CHECKF(memcmp(one, all + i * oimg, oimg * sizeof *one) == 0, "image %d", i);
    }
    free(x), free(wgt), free(all), free(one), free(scratch);
}
/* Block 0's batch statistics from its input's tap moments (src/model/tap_moments.c) against the
 * two-pass statistics of the conv output itself; images added one call each or all at once give
 * the same bits. Returns the mismatches. */
static int tap_mismatches(int n, int cin, int cout, int h, int w, uint64_t seed)
{
    size_t img = (size_t)cin * h * w, d = esm_tap_moments_doubles(cin);
    float *x = random_floats(n * img, seed), *wgt = random_floats((size_t)cout * cin * 9, seed + 1);
    float *z = malloc(n * (size_t)cout * h * w * sizeof *z), *mean = malloc(cout * sizeof *mean);
    float *var = malloc(cout * sizeof *var), *mean2 = malloc(cout * sizeof *mean2), *var2 = malloc(cout * sizeof *var2);
    float *scratch = malloc(esm_tap_moments_scratch(cin, h, w) * sizeof *scratch);
    float *cscratch = malloc(esm_conv3x3_direct_scratch(cin, cout, h, w) * sizeof *cscratch);
    double *mom = malloc(n * d * sizeof *mom), *moments = malloc(3 * (size_t)cout * sizeof *moments);
    double *moments2 = malloc(3 * (size_t)cout * sizeof *moments2);
    int bad = -1;
    if (x && wgt && z && mean && var && mean2 && var2 && scratch && cscratch && mom && moments && moments2) {
        for (size_t i = 0; i < n * img; i++) /* inputs with a mean well away from 0, like images */
            x[i] = 0.8f + 0.3f * x[i];
        esm_conv3x3_direct(esm_conv3x3_direct_variant(), x, NULL, wgt, NULL, n, cin, cout, h, w, cscratch, z);
        esm_batchnorm_stats(z, n, cout, h * w, mean, var);
        for (int i = 0; i < n; i++)
            esm_tap_moments_image(x + i * img, cin, h, w, scratch, mom + i * d);
        esm_tap_moments_stats(mom, n, cin, h * w, wgt, cout, moments);
        esm_batchnorm_moments_get(moments, cout, mean2, var2);
        bad = 0;
        for (int co = 0; co < cout; co++) {
            bad += !(fabs(mean2[co] - mean[co]) <= 1e-6 * (fabs(mean[co]) + sqrt(var[co])));
            bad += !(fabs(var2[co] - var[co]) <= 1e-5 * var[co]);
        }
        /* an image's moments do not depend on what else the scratch held */
        for (int i = n - 1; i >= 0; i--)
            esm_tap_moments_image(x + i * img, cin, h, w, scratch, mom + i * d);
        esm_tap_moments_stats(mom, n, cin, h * w, wgt, cout, moments2);
        bad += memcmp(moments, moments2, 3 * (size_t)cout * sizeof *moments) != 0;
    }
    free(x), free(wgt), free(z), free(mean), free(var), free(mean2), free(var2), free(scratch), free(cscratch);
    free(mom), free(moments), free(moments2);
    return bad;
}

TEST(conv_direct_tap_moments_give_batch_stats)
{
    static const struct {
        int n, cin, cout, h, w;
    } cases[] = {
        {5, 1, 16, 28, 28}, {3, 3, 8, 21, 21}, {2, 1, 7, 5, 6}, {2, 2, 4, 3, 300}, {4, 1, 5, 1, 1}, {3, 3, 9, 40, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int bad = tap_mismatches(cases[c].n, cases[c].cin, cases[c].cout, cases[c].h, cases[c].w, 70 + c);
        CHECKF(bad == 0, "n %d, cin %d, cout %d, %dx%d: %d mismatches", cases[c].n, cases[c].cin, cases[c].cout,
               cases[c].h, cases[c].w, bad);
    }
}
