/* The conv-4 net: layout, configuration checks, initialisation, batch-norm modes, workspaces
 * and concurrent use. Gradients are in test_model_grad.c, PyTorch comparisons in
 * test_model_golden.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

/* Uniform [0, 1) images from a Philox stream. */
static float *random_images(int n, int size, uint64_t seed)
{
    float *x = malloc((size_t)n * size * sizeof *x);
    esm_stream s = esm_stream_make(seed, 77, 0, 0);
    for (size_t i = 0; x && i < (size_t)n * size; i++)
        x[i] = esm_stream_uniform(&s);
    return x;
}

TEST(model_default_param_count)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = esm_net_config_default();
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    CHECK(net.n_params == 111936);
    CHECK(net.emb_dim == 64);
    CHECK(net.n_bn == 2 * 4 * 64);
    CHECK(net.in_size == 784);
    /* 28 -> 14 -> 7 -> 3 -> 1 with floor pooling */
    int want_h[4] = {28, 14, 7, 3};
    for (int b = 0; b < 4; b++) {
        CHECK(net.block[b].h == want_h[b] && net.block[b].w == want_h[b]);
        CHECK(net.block[b].cout == 64 && net.block[b].cin == (b ? 64 : 1));
    }
    /* Blocks are contiguous: weight, bias, gamma, beta, then the next block. */
    CHECK(net.block[0].w_off == 0 && net.block[0].b_off == 576 && net.block[0].gamma_off == 640 &&
          net.block[0].beta_off == 704 && net.block[1].w_off == 768);
}

TEST(model_other_shapes)
{
    /* 3x84x84 at width 32, depth 3: 84 -> 42 -> 21 -> 10, a 32*10*10 embedding. */
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = {.in_channels = 3, .in_height = 84, .in_width = 84, .width = 32, .depth = 3};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    CHECK(net.n_params == (size_t)(3 * 9 * 32 + 96) + 2 * (32 * 32 * 9 + 96));
    CHECK(net.emb_dim == 3200);
    /* Non-square, depth 1: 1x5x9 -> 2x4 at width 3. */
    esm_net_config c2 = {.in_channels = 1, .in_height = 5, .in_width = 9, .width = 3, .depth = 1};
    REQUIRE_OK(esm_net_init(&net, &c2, &err), &err);
    CHECK(net.emb_dim == 3 * 2 * 4);
    int n = 3;
    float *x = random_images(n, net.in_size, 1);
    float *p = malloc(net.n_params * sizeof *p), *emb = malloc((size_t)n * net.emb_dim * sizeof *emb);
    REQUIRE(x && p && emb);
    esm_net_init_params(&net, 3, p, NULL);
    esm_net_ws *ws;
    REQUIRE_OK(esm_net_ws_create(&net, n, 0, &ws, &err), &err);
    REQUIRE_OK(esm_net_forward(&net, p, NULL, ws, x, n, ESM_BN_BATCH, emb, &err), &err);
    for (int i = 0; i < n * net.emb_dim; i++)
        CHECK(isfinite(emb[i]) && emb[i] >= 0.0f); /* after a relu */
    esm_net_ws_free(ws);
    free(x), free(p), free(emb);
}

TEST(model_config_errors)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config c = esm_net_config_default();
    c.depth = 5; /* 28 -> 14 -> 7 -> 3 -> 1: a fifth block would get 1x1 */
    CHECK(esm_net_init(&net, &c, &err) == ESM_EINVAL);
    CHECK(strstr(err.msg, "block 4") != NULL);
    c = esm_net_config_default(), c.width = 0;
    CHECK(esm_net_init(&net, &c, &err) == ESM_EINVAL);
    c = esm_net_config_default(), c.depth = 0;
    CHECK(esm_net_init(&net, &c, &err) == ESM_EINVAL);
    c = esm_net_config_default(), c.depth = ESM_NET_MAX_DEPTH + 1;
    CHECK(esm_net_init(&net, &c, &err) == ESM_EINVAL);
    c = esm_net_config_default(), c.in_channels = -1;
    CHECK(esm_net_init(&net, &c, &err) == ESM_EINVAL);
    esm_net_ws *ws = (esm_net_ws *)&c; /* any non-NULL value: a failed create must reset it */
    c = esm_net_config_default();
    REQUIRE_OK(esm_net_init(&net, &c, &err), &err);
    CHECK(esm_net_ws_create(&net, 0, 0, &ws, &err) == ESM_EINVAL && ws == NULL);
}

TEST(model_init_is_pure_function_of_seed)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = esm_net_config_default();
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    size_t np = net.n_params;
    float *a = malloc(np * sizeof *a), *b = malloc(np * sizeof *b), *c = malloc(np * sizeof *c);
    float *ra = malloc(net.n_bn * sizeof *ra);
    REQUIRE(a && b && c && ra);
    esm_net_init_params(&net, 42, a, ra);
    esm_net_init_params(&net, 42, b, NULL);
    esm_net_init_params(&net, 43, c, NULL);
    CHECK(memcmp(a, b, np * sizeof *a) == 0);
    CHECK(memcmp(a, c, np * sizeof *a) != 0);
    for (int k = 0; k < 4; k++) {
        const esm_block *bl = &net.block[k];
        double bound = 1.0 / sqrt(bl->cin * 9.0), m = 0, v = 0;
        size_t nw = (size_t)bl->cout * bl->cin * 9;
        int inside = 1;
        for (size_t i = 0; i < nw; i++) {
            double w = a[bl->w_off + i];
            inside &= fabs(w) <= bound;
            m += w, v += w * w;
        }
        m /= nw, v /= nw;
        CHECKF(inside, "block %d: weights outside +-%g", k, bound);
        /* U(-b, b) has variance b^2/3; with >= 576 draws a 15% band is > 3 standard errors. */
        CHECK_NEAR(v / (bound * bound / 3.0), 1.0, 0.15);
        CHECK_NEAR(m / bound, 0.0, 0.1);
        for (int ch = 0; ch < bl->cout; ch++) {
            CHECK(fabs(a[bl->b_off + ch]) <= bound);
            CHECK(a[bl->gamma_off + ch] == 1.0f && a[bl->beta_off + ch] == 0.0f);
            CHECK(ra[bl->mean_off + ch] == 0.0f && ra[bl->var_off + ch] == 1.0f);
        }
    }
    free(a), free(b), free(c), free(ra);
}

/* A depth-1 net so the running statistics can be checked against a hand computation. */
TEST(model_bn_train_updates_running_stats)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = {.in_channels = 2, .in_height = 6, .in_width = 5, .width = 3, .depth = 1};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    int n = 4, hw = 30, c = 3;
    float *x = random_images(n, net.in_size, 5);
    float *p = malloc(net.n_params * sizeof *p), *emb = malloc((size_t)n * net.emb_dim * sizeof *emb);
    float *z = malloc((size_t)n * c * hw * sizeof *z), *scr = malloc(esm_conv3x3_scratch(2, c, 6, 5) * sizeof *scr);
    float run[6] = {0.5f, -0.2f, 0.1f, 2.0f, 0.7f, 1.3f}, run0[6];
    REQUIRE(x && p && emb && z && scr);
    memcpy(run0, run, sizeof run);
    esm_net_init_params(&net, 9, p, NULL);
    esm_conv3x3_forward(x, p, p + net.block[0].b_off, n, 2, c, 6, 5, scr, z);

    esm_net_ws *ws;
    REQUIRE_OK(esm_net_ws_create(&net, n, 0, &ws, &err), &err);
    REQUIRE_OK(esm_net_forward(&net, p, run, ws, x, n, ESM_BN_TRAIN, emb, &err), &err);
    for (int ch = 0; ch < c; ch++) {
        double s = 0, ss = 0, m = (double)n * hw;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++)
                s += z[((size_t)i * c + ch) * hw + q];
        double mu = s / m;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                double d = z[((size_t)i * c + ch) * hw + q] - mu;
                ss += d * d;
            }
        /* momentum 0.1, unbiased variance */
        CHECK_NEAR(run[ch], 0.9 * run0[ch] + 0.1 * mu, 1e-6);
        CHECK_NEAR(run[3 + ch], 0.9 * run0[3 + ch] + 0.1 * ss / (m - 1), 1e-6);
    }
    esm_net_ws_free(ws);
    free(x), free(p), free(emb), free(z), free(scr);
}

TEST(model_bn_modes)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = {.in_channels = 1, .in_height = 12, .in_width = 12, .width = 6, .depth = 3};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    int n = 5, d = net.emb_dim;
    float *x = random_images(n, net.in_size, 11);
    float *p = malloc(net.n_params * sizeof *p), *run = malloc(net.n_bn * sizeof *run);
    float *run0 = malloc(net.n_bn * sizeof *run0);
    float *e_train = malloc((size_t)n * d * sizeof(float)), *e_batch = malloc((size_t)n * d * sizeof(float));
    float *e_eval = malloc((size_t)n * d * sizeof(float)), *e_one = malloc((size_t)d * sizeof(float));
    REQUIRE(x && p && run && run0 && e_train && e_batch && e_eval && e_one);
    esm_net_init_params(&net, 1, p, run);
    for (size_t i = 0; i < net.n_bn; i++)
        run[i] += 0.25f * (float)(i % 3); /* away from the identity, so eval differs from batch */
    memcpy(run0, run, net.n_bn * sizeof *run);
    esm_net_ws *ws;
    REQUIRE_OK(esm_net_ws_create(&net, n, 0, &ws, &err), &err);

    /* Batch mode: the same output as train mode, running statistics untouched. */
    REQUIRE_OK(esm_net_forward(&net, p, run, ws, x, n, ESM_BN_BATCH, e_batch, &err), &err);
    CHECK(memcmp(run, run0, net.n_bn * sizeof *run) == 0);
    REQUIRE_OK(esm_net_forward(&net, p, run, ws, x, n, ESM_BN_TRAIN, e_train, &err), &err);
    CHECK(memcmp(e_train, e_batch, (size_t)n * d * sizeof(float)) == 0);
    CHECK(memcmp(run, run0, net.n_bn * sizeof *run) != 0);
    /* Train mode without a buffer is allowed and changes nothing else. */
    REQUIRE_OK(esm_net_forward(&net, p, NULL, ws, x, n, ESM_BN_TRAIN, e_batch, &err), &err);
    CHECK(memcmp(e_train, e_batch, (size_t)n * d * sizeof(float)) == 0);

    /* Eval: each image's embedding is independent of the rest of the batch; batch-mode is not. */
    REQUIRE_OK(esm_net_forward(&net, p, run, ws, x, n, ESM_BN_EVAL, e_eval, &err), &err);
    REQUIRE_OK(esm_net_forward(&net, p, run, ws, x + 2 * net.in_size, 1, ESM_BN_EVAL, e_one, &err), &err);
    for (int j = 0; j < d; j++)
        CHECK_NEAR(e_one[j], e_eval[2 * d + j], 1e-6 * (1 + fabs(e_one[j])));
    REQUIRE_OK(esm_net_forward(&net, p, run, ws, x + 2 * net.in_size, 1, ESM_BN_BATCH, e_one, &err), &err);
    double diff = 0;
    for (int j = 0; j < d; j++)
        diff += fabs(e_one[j] - e_batch[2 * d + j]);
    CHECK(diff > 1e-3);

    /* Misuse is reported, not crashed on. */
    CHECK(esm_net_forward(&net, p, NULL, ws, x, n, ESM_BN_EVAL, e_eval, &err) == ESM_EINVAL);
    CHECK(esm_net_forward(&net, p, run, ws, x, n + 1, ESM_BN_BATCH, e_eval, &err) == ESM_EINVAL);
    float g[1];
    CHECK(esm_net_backward(&net, p, ws, e_eval, g, &err) == ESM_EINVAL); /* no backward ws */
    esm_net other;
    esm_net_config oc = cfg;
    oc.width = 7;
    REQUIRE_OK(esm_net_init(&other, &oc, &err), &err);
    CHECK(esm_net_forward(&other, p, NULL, ws, x, n, ESM_BN_BATCH, e_eval, &err) == ESM_EMISMATCH);
    esm_net_ws_free(ws);

    /* Backward needs a batch-statistics forward first. */
    float *grad = malloc(net.n_params * sizeof *grad);
    REQUIRE(grad);
    REQUIRE_OK(esm_net_ws_create(&net, n, 1, &ws, &err), &err);
    CHECK(esm_net_backward(&net, p, ws, e_eval, grad, &err) == ESM_EINVAL);
    REQUIRE_OK(esm_net_forward(&net, p, run, ws, x, n, ESM_BN_EVAL, e_eval, &err), &err);
    CHECK(esm_net_backward(&net, p, ws, e_eval, grad, &err) == ESM_EINVAL);
    REQUIRE_OK(esm_net_forward(&net, p, run, ws, x, n, ESM_BN_BATCH, e_batch, &err), &err);
    REQUIRE_OK(esm_net_backward(&net, p, ws, e_eval, grad, &err), &err);
    /* A with-backward workspace computes the same forward as a forward-only one. */
    CHECK(memcmp(e_train, e_batch, (size_t)n * d * sizeof(float)) == 0);
    CHECK(esm_net_ws_bytes(&net, n, 1) > esm_net_ws_bytes(&net, n, 0));
    esm_net_ws_free(ws);
    free(grad);
    free(x), free(p), free(run), free(run0), free(e_train), free(e_batch), free(e_eval), free(e_one);
}

/* Two threads, each with its own workspace and parameter vector, must reproduce the
 * serial results exactly: forward and backward share no mutable state. */
TEST(model_concurrent_matches_serial)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = {.in_channels = 1, .in_height = 28, .in_width = 28, .width = 16, .depth = 4};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    enum { T = 2, N = 8, REPS = 3 };
    size_t np = net.n_params, ne = (size_t)N * net.emb_dim;
    float *x = random_images(N, net.in_size, 21);
    float *params[T], *emb[T], *grad[T], *emb_ser[T], *grad_ser[T];
    esm_net_ws *ws[T];
    for (int t = 0; t < T; t++) {
        params[t] = malloc(np * sizeof(float)), grad[t] = malloc(np * sizeof(float));
        grad_ser[t] = malloc(np * sizeof(float));
        emb[t] = malloc(ne * sizeof(float)), emb_ser[t] = malloc(ne * sizeof(float));
        REQUIRE(params[t] && grad[t] && grad_ser[t] && emb[t] && emb_ser[t]);
        esm_net_init_params(&net, 100 + t, params[t], NULL);
        REQUIRE_OK(esm_net_ws_create(&net, N, 1, &ws[t], &err), &err);
    }
    REQUIRE(x);
    for (int t = 0; t < T; t++) {
        REQUIRE_OK(esm_net_forward(&net, params[t], NULL, ws[t], x, N, ESM_BN_BATCH, emb_ser[t], &err), &err);
        /* d_emb = emb: the gradient of sum(emb^2)/2 */
        REQUIRE_OK(esm_net_backward(&net, params[t], ws[t], emb_ser[t], grad_ser[t], &err), &err);
    }
    CHECK(memcmp(emb_ser[0], emb_ser[1], ne * sizeof(float)) != 0);
    int bad[T] = {0};
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; t++) {
        for (int r = 0; r < REPS; r++) {
            esm_err e = {0};
            bad[t] |= esm_net_forward(&net, params[t], NULL, ws[t], x, N, ESM_BN_BATCH, emb[t], &e) != ESM_OK;
            bad[t] |= esm_net_backward(&net, params[t], ws[t], emb[t], grad[t], &e) != ESM_OK;
            bad[t] |= memcmp(emb[t], emb_ser[t], ne * sizeof(float)) != 0;
            bad[t] |= memcmp(grad[t], grad_ser[t], np * sizeof(float)) != 0;
        }
    }
    for (int t = 0; t < T; t++) {
        CHECKF(!bad[t], "thread %d differs from the serial run", t);
        esm_net_ws_free(ws[t]);
        free(params[t]), free(grad[t]), free(grad_ser[t]), free(emb[t]), free(emb_ser[t]);
    }
    free(x);
}

/* A forward-only workspace convolves block 0 twice (statistics, then ReLU + pool, chunk by chunk in
 * a per-thread slot, net_pass.c): it must give the bits of a workspace kept for backward, which
 * convolves once, in every batch-norm mode and on 1 or 2 threads. RGB 20x20 input: several chunks. */
TEST(model_forward_only_same_bits_as_with_backward)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = {.in_channels = 3, .in_height = 20, .in_width = 20, .width = 16, .depth = 3};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    enum { N = 23 };
    size_t ne = (size_t)N * net.emb_dim;
    float *x = random_images(N, net.in_size, 31), *p = malloc(net.n_params * sizeof *p);
    float *want = malloc(ne * sizeof *want), *got = malloc(ne * sizeof *got);
    float *run = malloc(net.n_bn * sizeof *run), *run2 = malloc(net.n_bn * sizeof *run2);
    esm_net_ws *back = NULL, *fwd = NULL;
    REQUIRE(x && p && want && got && run && run2);
    esm_net_init_params(&net, 5, p, run);
    REQUIRE_OK(esm_net_ws_create(&net, N, 1, &back, &err), &err);
    REQUIRE_OK(esm_net_ws_create(&net, N, 0, &fwd, &err), &err);
    esm_bn_mode modes[3] = {ESM_BN_BATCH, ESM_BN_TRAIN, ESM_BN_EVAL};
    for (int m = 0; m < 3; m++)
        for (int threads = 1; threads <= 2; threads++) {
            REQUIRE_OK(esm_net_ws_set_threads(back, threads, &err), &err);
            REQUIRE_OK(esm_net_ws_set_threads(fwd, threads, &err), &err);
            memcpy(run2, run, net.n_bn * sizeof *run);
            REQUIRE_OK(esm_net_forward(&net, p, run, back, x, N, modes[m], want, &err), &err);
            REQUIRE_OK(esm_net_forward(&net, p, run2, fwd, x, N, modes[m], got, &err), &err);
            CHECKF(memcmp(want, got, ne * sizeof *got) == 0, "mode %d, %d threads: embeddings differ", m, threads);
            CHECKF(memcmp(run, run2, net.n_bn * sizeof *run) == 0, "mode %d, %d threads: running statistics differ",
                   m, threads);
        }
    esm_net_ws_free(back);
    esm_net_ws_free(fwd);
    free(x), free(p), free(want), free(got), free(run), free(run2);
}

/* Streaming the statistics in uneven chunks of images gives what one pass over the batch gives. */
TEST(model_bn_moments_stream)
{
    enum { N = 7, C = 3, HW = 10 };
    float z[N * C * HW], mean[C], var[C], mean2[C], var2[C];
    esm_gauss_fill(4, 0, 0, z, N * C * HW);
    for (int i = 0; i < N * C * HW; i++)
        z[i] = 3.0f + 2.0f * z[i]; /* mean 3, variance 4 */
    esm_batchnorm_stats(z, N, C, HW, mean, var);
    double acc[3 * C] = {0};
    esm_batchnorm_moments_add(z, 2, C, HW, acc);
    esm_batchnorm_moments_add(z + 2 * C * HW, 1, C, HW, acc);
    esm_batchnorm_moments_add(z + 3 * C * HW, 4, C, HW, acc);
    esm_batchnorm_moments_get(acc, C, mean2, var2);
    for (int c = 0; c < C; c++) {
        double m = 0, v = 0;
        for (int i = 0; i < N; i++)
            for (int q = 0; q < HW; q++)
                m += z[(i * C + c) * HW + q];
        m /= N * HW;
        for (int i = 0; i < N; i++)
            for (int q = 0; q < HW; q++)
                v += (z[(i * C + c) * HW + q] - m) * (z[(i * C + c) * HW + q] - m);
        v /= N * HW;
        CHECK_NEAR(mean[c], m, 1e-6 * (1 + fabs(m)));
        CHECK_NEAR(var[c], v, 1e-6 * v);
        CHECK_NEAR(mean2[c], mean[c], 1e-6 * (1 + fabs(m)));
        CHECK_NEAR(var2[c], var[c], 1e-6 * v);
    }
}

TEST(model_relu_pool_carries_nonfinite)
{
    /* z is (1,1,2,4): two 2x2 windows. A NaN or inf anywhere in a window must reach the
     * output (max comparisons alone would drop a NaN and relu would clamp -inf to 0), while
     * finite windows are plain max(0, max(a)). */
    float z[8] = {1, 2, -3, -4, 3, 0, -5, -6}, scale = 1.0f, shift = 0.0f, out[2];
    esm_affine_relu_pool_forward(z, &scale, &shift, 1, 1, 2, 4, out);
    CHECK(out[0] == 3.0f && out[1] == 0.0f);
    for (int k = 0; k < 4; k++) {
        float bad[8];
        memcpy(bad, z, sizeof z);
        bad[(k & 1) + (k >> 1) * 4] = k == 3 ? -INFINITY : NAN;
        esm_affine_relu_pool_forward(bad, &scale, &shift, 1, 1, 2, 4, out);
        CHECKF(isnan(out[0]) && out[1] == 0.0f, "non-finite at window position %d: out %g %g", k, (double)out[0],
               (double)out[1]);
    }
}
