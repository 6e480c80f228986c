/* Finite-difference checks of every layer's backward and of the whole episode loss.
 * Everything runs in float32, so central differences use steps that balance truncation
 * (h^2) against rounding (eps*|L|/h); thresholds are stated per test. */
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

static void fill_gauss(float *x, size_t n, uint32_t id, float scale)
{
    esm_gauss_fill(7, id, 0, x, n);
    for (size_t i = 0; i < n; i++)
        x[i] *= scale;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* |a - b| relative to max(1, |a| + |b|): absolute near zero, relative for large values. */
static double rdiff(double a, double b)
{
    double s = fabs(a) + fabs(b);
    return fabs(a - b) / (s > 1.0 ? s : 1.0);
}

typedef struct {
    int n, cin, cout, h, w;
} conv_shape;

/* L = sum(r * conv(inp)) */
static double conv_loss(const conv_shape *c, const float *inp, const float *wgt, const float *bias, const float *r,
                        float *scr, float *out)
{
    esm_conv3x3_forward(inp, wgt, bias, c->n, c->cin, c->cout, c->h, c->w, scr, out);
    return dot(out, r, (size_t)c->n * c->cout * c->h * c->w);
}

/* Worst relative error of the conv's backward against central differences. */
static double conv_grad_error(const conv_shape *c)
{
    size_t ni = (size_t)c->n * c->cin * c->h * c->w, nw = (size_t)c->cout * c->cin * 9;
    size_t no = (size_t)c->n * c->cout * c->h * c->w, ns = esm_conv3x3_scratch(c->cin, c->cout, c->h, c->w);
    float *inp = malloc(ni * sizeof(float)), *wgt = malloc(nw * sizeof(float)), *bias = malloc(c->cout * sizeof(float));
    float *r = malloc(no * sizeof(float)), *out = malloc(no * sizeof(float)), *scr = malloc(ns * sizeof(float));
    float *d_inp = malloc(ni * sizeof(float)), *d_wgt = malloc(nw * sizeof(float));
    float *d_bias = malloc(c->cout * sizeof(float));
    double worst = 1e9;
    if (!inp || !wgt || !bias || !r || !out || !scr || !d_inp || !d_wgt || !d_bias)
        goto done;
    fill_gauss(inp, ni, 1, 1.0f), fill_gauss(wgt, nw, 2, 0.3f), fill_gauss(bias, c->cout, 3, 0.5f);
    fill_gauss(r, no, 4, 1.0f);
    esm_conv3x3_backward(inp, wgt, r, c->n, c->cin, c->cout, c->h, c->w, scr, d_inp, d_wgt, d_bias);
    const float h = 1e-2f;
    float *args[3] = {inp, wgt, bias}, *grads[3] = {d_inp, d_wgt, d_bias};
    size_t lens[3] = {ni, nw, (size_t)c->cout};
    worst = 0;
    for (int a = 0; a < 3; a++) {
        for (size_t i = 0; i < lens[a]; i++) {
            float keep = args[a][i];
            args[a][i] = keep + h;
            double lp = conv_loss(c, inp, wgt, bias, r, scr, out);
            args[a][i] = keep - h;
            double lm = conv_loss(c, inp, wgt, bias, r, scr, out);
            args[a][i] = keep;
            double e = rdiff((lp - lm) / (2 * h), grads[a][i]);
            worst = e > worst ? e : worst;
        }
    }
done:
    free(inp), free(wgt), free(bias), free(r), free(out), free(scr), free(d_inp), free(d_wgt), free(d_bias);
    return worst;
}

/* The conv is linear in each argument, so differences are exact up to rounding:
 * h = 1e-2, threshold 1e-3. Shapes cover one image per sgemm (14x14), a batch lowered as
 * one group (5x6, n = 2) and several groups with a partial last one (5x6, n = 9). */
TEST(model_grad_conv)
{
    const conv_shape shapes[3] = {{2, 3, 4, 5, 6}, {9, 2, 3, 5, 6}, {2, 2, 3, 14, 14}};
    for (int s = 0; s < 3; s++) {
        double e = conv_grad_error(&shapes[s]);
        CHECKF(e < 1e-3, "conv shape %d: worst relative error %.3g", s, e);
    }
}

enum { BN = 3, BC = 2, BHW = 7 };

/* L = sum(r * (gamma * batchnorm(z) + beta)), through stats + fold as the net does it */
static double bn_loss(const float *z, const float *gamma, const float *beta, const float *r)
{
    float mean[BC], var[BC], scale[BC], shift[BC];
    esm_batchnorm_stats(z, BN, BC, BHW, mean, var);
    esm_batchnorm_fold(gamma, beta, mean, var, BC, scale, shift);
    double l = 0;
    for (int i = 0; i < BN; i++)
        for (int c = 0; c < BC; c++)
            for (int q = 0; q < BHW; q++) {
                size_t o = ((size_t)i * BC + c) * BHW + q;
                l += (double)r[o] * (scale[c] * z[o] + shift[c]);
            }
    return l;
}

/* Smooth: h = 1e-2 keeps rounding error (~1e-5) and truncation (~h^2 |L'''|) below 2e-3. */
TEST(model_grad_batchnorm)
{
    size_t n = (size_t)BN * BC * BHW;
    float z[BN * BC * BHW], r[BN * BC * BHW], d[BN * BC * BHW];
    float gamma[BC] = {1.3f, -0.6f}, beta[BC] = {0.2f, -0.1f}, mean[BC], var[BC], dg[BC], db[BC];
    fill_gauss(z, n, 5, 1.0f), fill_gauss(r, n, 6, 1.0f);
    for (size_t i = 0; i < n; i++)
        z[i] += 0.5f; /* a non-zero mean */
    esm_batchnorm_stats(z, BN, BC, BHW, mean, var);
    memcpy(d, r, sizeof r);
    esm_batchnorm_backward(z, mean, var, gamma, BN, BC, BHW, d, dg, db);
    const float h = 1e-2f;
    double worst = 0;
    float *args[3] = {z, gamma, beta}, *grads[3] = {d, dg, db};
    size_t lens[3] = {n, BC, BC};
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < lens[a]; i++) {
            float keep = args[a][i];
            args[a][i] = keep + h;
            double lp = bn_loss(z, gamma, beta, r);
            args[a][i] = keep - h;
            double lm = bn_loss(z, gamma, beta, r);
            args[a][i] = keep;
            double e = rdiff((lp - lm) / (2 * h), grads[a][i]);
            worst = e > worst ? e : worst;
        }
    CHECKF(worst < 2e-3, "batch norm: worst relative error %.3g", worst);
}

enum { PN = 2, PC = 2, PH = 5, PW = 7 };

/* L = sum(r * pool(relu(scale*z + shift))) */
static double pool_loss(const float *z, const float *scale, const float *shift, const float *r, float *out)
{
    esm_affine_relu_pool_forward(z, scale, shift, PN, PC, PH, PW, out);
    return dot(out, r, (size_t)PN * PC * (PH / 2) * (PW / 2));
}

/* Piecewise linear: inputs are spaced 0.05 apart and kept 0.01 away from the relu kink, so a
 * step of 1e-3 never crosses a kink and differences are exact up to rounding (threshold 1e-3).
 * Odd sizes (5x7) check that floor pooling gives the dropped row and column no gradient. */
TEST(model_grad_relu_pool)
{
    size_t n = (size_t)PN * PC * PH * PW, no = (size_t)PN * PC * (PH / 2) * (PW / 2);
    float z[PN * PC * PH * PW], d_y[PN * PC * PH * PW], r[PN * PC * (PH / 2) * (PW / 2)];
    float out[PN * PC * (PH / 2) * (PW / 2)];
    float scale[PC] = {1.3f, -0.8f}, shift[PC] = {0.1f, 0.03f}; /* kinks at z = -0.077, 0.0375 */
    esm_stream s = esm_stream_make(3, 0, 0, 0);
    /* a random permutation of 0..n-1, shifted and scaled */
    int perm[PN * PC * PH * PW];
    for (size_t i = 0; i < n; i++)
        perm[i] = (int)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = esm_stream_below(&s, (uint32_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        z[i] = ((float)perm[i] - (float)n / 2) * 0.05f + 0.013f;
    fill_gauss(r, no, 8, 1.0f);
    esm_affine_relu_pool_backward(z, scale, shift, r, PN, PC, PH, PW, d_y);
    const float h = 1e-3f;
    double worst = 0;
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i / (PH * PW)) % PC;
        float keep = z[i];
        z[i] = keep + h;
        double lp = pool_loss(z, scale, shift, r, out);
        z[i] = keep - h;
        double lm = pool_loss(z, scale, shift, r, out);
        z[i] = keep;
        double want = scale[c] * d_y[i]; /* d/dz of scale*z + shift */
        double e = rdiff((lp - lm) / (2 * h), want);
        worst = e > worst ? e : worst;
        any += d_y[i] != 0.0f;
        int y = (int)(i % (PH * PW)) / PW, x = (int)(i % PW);
        if (y == PH - 1 || x == PW - 1)
            CHECK(d_y[i] == 0.0f);
    }
    CHECKF(worst < 1e-3, "relu+pool: worst relative error %.3g", worst);
    CHECK(any > 4);
}

/* The whole episode loss w.r.t. every parameter of a small net. ReLU and max-pool kinks can
 * make a few coordinates disagree, so the test bounds the aggregate error
 * |g - g_fd| / |g_fd| < 1e-2 and allows at most 3% of coordinates outside
 * |g - g_fd| <= 2e-3 + 5e-2 |g_fd| (h = 1e-3; seen: none). */
TEST(model_grad_protonet_loss)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = {.in_channels = 1, .in_height = 8, .in_width = 8, .width = 4, .depth = 2};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    int way = 2, shot = 2, nq = 4, labels[4] = {0, 1, 1, 0};
    size_t np = net.n_params;
    float *p = malloc(np * sizeof(float)), *g = malloc(np * sizeof(float)), *g_fd = malloc(np * sizeof(float));
    float *sup = malloc((size_t)way * shot * net.in_size * sizeof(float)), *qry = malloc((size_t)nq * net.in_size * sizeof(float));
    REQUIRE(p && g && g_fd && sup && qry);
    esm_net_init_params(&net, 5, p, NULL);
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 4; c++) { /* non-trivial affine batch norm */
            p[net.block[b].gamma_off + c] = 1.0f + 0.2f * (float)(c - 1);
            p[net.block[b].beta_off + c] = 0.05f * (float)c;
        }
    fill_gauss(sup, (size_t)way * shot * net.in_size, 11, 1.0f);
    fill_gauss(qry, (size_t)nq * net.in_size, 12, 1.0f);
    esm_protonet_ws *ws;
    REQUIRE_OK(esm_protonet_ws_create(&net, way, shot, nq, 1, &ws, &err), &err);
    float loss, acc;
    REQUIRE_OK(esm_protonet_loss_grad(&net, p, NULL, ESM_BN_BATCH, ws, sup, way, shot, qry, labels, nq, &loss, &acc, g,
                                      &err),
               &err);
    const float h = 1e-3f;
    for (size_t i = 0; i < np; i++) {
        float keep = p[i], lp, lm;
        p[i] = keep + h;
        REQUIRE_OK(esm_protonet_loss(&net, p, NULL, ESM_BN_BATCH, ws, sup, way, shot, qry, labels, nq, &lp, NULL, &err),
                   &err);
        p[i] = keep - h;
        REQUIRE_OK(esm_protonet_loss(&net, p, NULL, ESM_BN_BATCH, ws, sup, way, shot, qry, labels, nq, &lm, NULL, &err),
                   &err);
        p[i] = keep;
        g_fd[i] = (float)(((double)lp - lm) / (2 * h));
    }
    double num = 0, den = 0;
    int off = 0;
    for (size_t i = 0; i < np; i++) {
        double d = (double)g[i] - g_fd[i];
        num += d * d, den += (double)g_fd[i] * g_fd[i];
        off += fabs(d) > 2e-3 + 5e-2 * fabs(g_fd[i]);
    }
    double rel = sqrt(num / den);
    CHECKF(rel < 1e-2, "aggregate relative error %.3g", rel);
    CHECKF(off <= (int)(0.03 * np), "%d of %zu coordinates disagree", off, np);
    if (getenv("ESM_TEST_VERBOSE"))
        fprintf(stderr, "    loss %.4f, |g| %.3g, aggregate error %.3g, %d coordinates off\n", loss, sqrt(den), rel,
                off);
    esm_protonet_ws_free(ws);
    free(p), free(g), free(g_fd), free(sup), free(qry);
}
