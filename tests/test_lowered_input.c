/* Block 0's lowered input (im2col) computed once and shared: a forward that reads it must give
 * the bits of one that lowers the images itself, whatever way the conv cuts the batch into cache
 * runs and GEMM groups, and the ES evaluator that shares it must score every member as a plain
 * per-member loss does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"
#include "popeval/popeval.h"

/* Embeddings of n images through esm_net_forward and through esm_net_forward_lowered with the
 * input lowered in two pieces (split at image `cut`), compared bit for bit; returns the number
 * of differing floats, or -1 if a call failed. */
static int lowered_mismatches(esm_net_config nc, int n, int cut, esm_err *err)
{
    esm_net net;
    if (esm_net_init(&net, &nc, err) != ESM_OK)
        return -1;
    size_t in = (size_t)n * net.in_size, ne = (size_t)n * net.emb_dim;
    float *p = malloc(net.n_params * sizeof *p), *x = malloc(in * sizeof *x);
    float *cols = malloc(esm_net_lowered_floats(&net, n) * sizeof *cols);
    float *want = malloc(ne * sizeof *want), *got = malloc(ne * sizeof *got);
    esm_net_ws *ws = NULL;
    int bad = -1;
    if (!p || !x || !cols || !want || !got || esm_net_ws_create(&net, n, 0, &ws, err) != ESM_OK)
        goto done;
    esm_net_init_params(&net, 3, p, NULL);
    esm_gauss_fill(17, (uint32_t)nc.width, 0, x, in);
    if (esm_net_forward(&net, p, NULL, ws, x, n, ESM_BN_BATCH, want, err) != ESM_OK ||
        esm_net_lower_input(&net, x, 0, cut, n, cols, err) != ESM_OK ||
        esm_net_lower_input(&net, x + (size_t)cut * net.in_size, cut, n - cut, n, cols, err) != ESM_OK ||
        esm_net_forward_lowered(&net, p, NULL, ws, NULL, cols, n, ESM_BN_BATCH, got, err) != ESM_OK)
        goto done;
    bad = 0;
    for (size_t i = 0; i < ne; i++)
        bad += memcmp(&want[i], &got[i], sizeof want[i]) != 0;
done:
    esm_net_ws_free(ws);
    free(p), free(x), free(cols), free(want), free(got);
    return bad;
}

TEST(lowered_input_forward_same_bits_as_lowering_per_forward)
{
    esm_err err = {0};
    /* {config, n, cut}: 28x28 one image per GEMM (the benchmark's width 16 and 32, cache runs of 5
     * and 2 images); 8x8 GEMM groups of 3 with a short last group; 8x8 at width 200, cache runs of 5
     * images that cut the groups (3 + 2); three channels */
    struct {
        esm_net_config nc;
        int n, cut;
    } cases[] = {
        {{1, 28, 28, 16, 4}, 50, 25}, {{1, 28, 28, 32, 4}, 13, 4}, {{1, 8, 8, 6, 2}, 13, 7},
        {{1, 8, 8, 200, 1}, 13, 6},   {{3, 10, 9, 5, 2}, 7, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int bad = lowered_mismatches(cases[c].nc, cases[c].n, cases[c].cut, &err);
        REQUIREF(bad >= 0, "case %zu: %s", c, err.msg);
        CHECKF(bad == 0, "case %zu (%dx%dx%d, width %d, %d images): %d embedding floats differ", c,
               cases[c].nc.in_channels, cases[c].nc.in_height, cases[c].nc.in_width, cases[c].nc.width, cases[c].n,
               bad);
    }
}

TEST(lowered_input_needs_images_or_lowering)
{
    esm_err err = {0};
    esm_net_config nc = {1, 8, 8, 4, 2};
    esm_net net;
    REQUIRE_OK(esm_net_init(&net, &nc, &err), &err);
    float p[2000], emb[64], cols[9 * 64 * 2], x[128] = {0};
    REQUIRE(net.n_params <= 2000 && net.emb_dim * 2 <= 64);
    esm_net_init_params(&net, 1, p, NULL);
    esm_net_ws *ws = NULL, *wsb = NULL;
    REQUIRE_OK(esm_net_ws_create(&net, 2, 0, &ws, &err), &err);
    REQUIRE_OK(esm_net_ws_create(&net, 2, 1, &wsb, &err), &err);
    CHECK(esm_net_lower_input(&net, x, 1, 2, 2, cols, &err) == ESM_EINVAL);
    REQUIRE_OK(esm_net_lower_input(&net, x, 0, 2, 2, cols, &err), &err);
    CHECK(esm_net_forward_lowered(&net, p, NULL, ws, NULL, NULL, 2, ESM_BN_BATCH, emb, &err) == ESM_EINVAL);
    CHECK(strstr(err.msg, "x is NULL") != NULL);
    /* backward needs the images themselves */
    CHECK(esm_net_forward_lowered(&net, p, NULL, wsb, NULL, cols, 2, ESM_BN_BATCH, emb, &err) == ESM_EINVAL);
    CHECK(esm_net_forward_lowered(&net, p, NULL, wsb, x, cols, 2, ESM_BN_BATCH, emb, &err) == ESM_OK);
    esm_net_ws_free(ws);
    esm_net_ws_free(wsb);
}

TEST(lowered_input_shared_by_evaluator_gives_per_member_fitness)
{
    /* the benchmark's net (28x28, width 16), two episodes a generation, no antithetic pairs */
    enum { WAY = 5, SHOT = 2, QUERY = 3, POP = 5, IMG = 28 * 28 };
    esm_err err = {0};
    esm_net_config nc = {1, 28, 28, 16, 4};
    esm_net net;
    REQUIRE_OK(esm_net_init(&net, &nc, &err), &err);
    size_t n = net.n_params;
    float *img = malloc(sizeof(float) * 2 * WAY * (SHOT + QUERY) * IMG);
    int lab[WAY * QUERY];
    REQUIRE(img);
    esm_gauss_fill(23, 0, 0, img, (size_t)2 * WAY * (SHOT + QUERY) * IMG);
    for (int i = 0; i < WAY * QUERY; i++)
        lab[i] = (i * 3) % WAY;
    esm_episode eps[2];
    for (int e = 0; e < 2; e++) {
        float *base = img + (size_t)e * WAY * (SHOT + QUERY) * IMG;
        eps[e] = (esm_episode){.shape = {WAY, SHOT, QUERY}, .image_size = IMG, .support = base,
                               .query = base + (size_t)WAY * SHOT * IMG, .query_label = lab};
    }
    float *mean = malloc(n * sizeof *mean), *scale = malloc(n * sizeof *scale), *theta = malloc(n * sizeof *theta);
    REQUIRE(mean && scale && theta);
    esm_net_init_params(&net, 5, mean, NULL);
    for (size_t j = 0; j < n; j++)
        scale[j] = 0.02f;
    esm_protonet_ws *ws = NULL;
    REQUIRE_OK(esm_protonet_ws_create(&net, WAY, SHOT, WAY * QUERY, 0, &ws, &err), &err);
    float want_loss[POP], want_acc[POP];
    for (int i = 0; i < POP; i++) {
        esm_es_noise_range(41, 3, i, 0, 0, n, theta);
        for (size_t j = 0; j < n; j++)
            theta[j] = mean[j] + scale[j] * theta[j];
        REQUIRE_OK(esm_episodes_score(&net, eps, 2, theta, NULL, ESM_BN_BATCH, ws, NULL, &want_loss[i], &want_acc[i],
                                      &err),
                   &err);
    }
    void *cpu = NULL;
    REQUIRE_OK(esm_popeval_cpu_ops.create(&net, eps[0].shape, POP, NULL, &cpu, &err), &err);
    esm_popeval_job job = {.eps = eps, .n_eps = 2, .begin = 0, .count = POP,
                           .pop = {.mean = mean, .scale = scale, .dim = n, .popsize = POP, .seed = 41, .gen = 3,
                                   .antithetic = 0}};
    float loss[POP], acc[POP], fit[POP];
    REQUIRE_OK(esm_popeval_cpu_ops.evaluate(cpu, &job, loss, acc, fit, &err), &err);
    for (int k = 0; k < POP; k++)
        CHECKF(memcmp(&loss[k], &want_loss[k], sizeof loss[k]) == 0 && memcmp(&acc[k], &want_acc[k], sizeof acc[k]) == 0,
               "member %d: loss %.9g acc %.9g, want %.9g %.9g", k, loss[k], acc[k], want_loss[k], want_acc[k]);
    esm_popeval_cpu_ops.free(cpu);
    esm_protonet_ws_free(ws);
    free(img), free(mean), free(scale), free(theta);
}
