/* The streamed episode loss against the whole-episode one, on real Omniglot episodes. */
#include <stdlib.h>
#include <string.h>

#include "esmeta/protonet.h"
#include "harness.h"

/* Relative agreement allowed between streamed and whole-episode results: they differ only in
 * the order batch-norm moments are merged across chunks (double sums, float results). */
#define STREAM_RTOL 1e-5

typedef struct {
    esm_net net;
    esm_dataset *ds;
    esm_split sp;
    esm_episode ep;
    float *p, *run_a, *run_b;
} fixture;

static int setup(fixture *f, esm_episode_shape sh, esm_err *err)
{
    memset(f, 0, sizeof *f);
    esm_net_config cfg = esm_net_config_default();
    f->ds = esm_test_dataset();
    if (!f->ds || esm_net_init(&f->net, &cfg, err) != ESM_OK || esm_split_get(f->ds, "train", &f->sp, err) != ESM_OK ||
        esm_episode_init(&f->ep, f->ds, sh, err) != ESM_OK)
        return 0;
    esm_episode_sample(&f->ep, f->ds, &f->sp, 7, 3);
    f->p = malloc(f->net.n_params * sizeof(float));
    f->run_a = malloc(f->net.n_bn * sizeof(float));
    f->run_b = malloc(f->net.n_bn * sizeof(float));
    if (!f->p || !f->run_a || !f->run_b)
        return 0;
    esm_net_init_params(&f->net, 11, f->p, f->run_a);
    /* a trained-looking running state, so eval mode is not the identity */
    for (size_t i = 0; i < f->net.n_bn; i++)
        f->run_a[i] = 0.5f + 0.01f * (float)(i % 17);
    memcpy(f->run_b, f->run_a, f->net.n_bn * sizeof(float));
    return 1;
}

static void teardown(fixture *f)
{
    esm_episode_free(&f->ep);
    esm_split_free(&f->sp);
    free(f->p), free(f->run_a), free(f->run_b);
}

static double rel(double a, double b)
{
    return fabs(a - b) / (fabs(b) > 1e-30 ? fabs(b) : 1e-30);
}

TEST(protonet_stream_matches_whole_episode)
{
    esm_err err = {0};
    esm_episode_shape sh = {10, 5, 5}; /* 100 images */
    fixture f;
    REQUIRE(setup(&f, sh, &err));
    int nq = sh.way * sh.query;
    esm_protonet_ws *whole;
    REQUIRE_OK(esm_protonet_ws_create(&f.net, sh.way, sh.shot, nq, 0, &whole, &err), &err);
    esm_episode_arrays arr;
    esm_episode_stream s = esm_episode_stream_arrays(&arr, f.ep.support, sh.way, sh.shot, f.ep.query,
                                                     f.ep.query_label, nq, f.net.in_size);
    esm_protonet_stream *small, *big;
    REQUIRE_OK(esm_protonet_stream_create(&f.net, sh.way, 16, &small, &err), &err); /* 7 chunks */
    REQUIRE_OK(esm_protonet_stream_create(&f.net, sh.way, 100, &big, &err), &err);  /* one chunk */
    esm_bn_mode modes[3] = {ESM_BN_BATCH, ESM_BN_TRAIN, ESM_BN_EVAL};
    for (int m = 0; m < 3; m++) {
        float want, want_acc, got, got_acc, one, one_acc;
        memcpy(f.run_b, f.run_a, f.net.n_bn * sizeof(float));
        REQUIRE_OK(esm_protonet_loss(&f.net, f.p, f.run_a, modes[m], whole, f.ep.support, sh.way, sh.shot, f.ep.query,
                                     f.ep.query_label, nq, &want, &want_acc, &err),
                   &err);
        REQUIRE_OK(esm_protonet_loss_stream(&f.net, f.p, f.run_b, modes[m], small, &s, &got, &got_acc, &err), &err);
        CHECKF(rel(got, want) <= STREAM_RTOL, "mode %d: streamed %.9g whole %.9g", m, got, want);
        CHECK(got_acc == want_acc);
        for (size_t i = 0; i < f.net.n_bn; i++) /* train mode moved both alike */
            CHECKF(rel(f.run_b[i], f.run_a[i]) <= STREAM_RTOL, "mode %d bn %zu: %.9g vs %.9g", m, i, f.run_b[i],
                   f.run_a[i]);
        if (modes[m] == ESM_BN_TRAIN)
            continue;
        /* an episode that fits the chunk runs the ordinary forward: identical bits */
        REQUIRE_OK(esm_protonet_loss_stream(&f.net, f.p, f.run_a, modes[m], big, &s, &one, &one_acc, &err), &err);
        CHECKF(one == want && one_acc == want_acc, "mode %d: one chunk %.9g whole %.9g", m, one, want);
    }
    CHECK(esm_protonet_loss_stream(&f.net, f.p, NULL, ESM_BN_EVAL, small, &s, NULL, NULL, &err) == ESM_EINVAL);
    s.way = sh.way + 1;
    CHECK(esm_protonet_loss_stream(&f.net, f.p, NULL, ESM_BN_BATCH, small, &s, NULL, NULL, &err) == ESM_EINVAL);
    esm_protonet_stream_free(small);
    esm_protonet_stream_free(big);
    esm_protonet_ws_free(whole);
    teardown(&f);
}

/* Synthetic rows on demand: what a caller with an episode too big to hold would do. */
typedef struct {
    int n_support, shot, img;
} synth;

static void synth_rows(void *ctx, int first, int count, float *x, int *label)
{
    const synth *s = ctx;
    for (int i = 0; i < count; i++) {
        int r = first + i, cls = r < s->n_support ? r / s->shot : (r - s->n_support) % 5;
        for (int k = 0; k < s->img; k++)
            x[(size_t)i * s->img + k] = (float)((k * 7 + cls * 13 + r) % 29) / 29.0f;
        label[i] = cls;
    }
}

TEST(protonet_stream_memory_is_independent_of_episode)
{
    esm_err err = {0};
    esm_net net;
    esm_net_config cfg = {.in_channels = 1, .in_height = 28, .in_width = 28, .width = 8, .depth = 4};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    /* The workspace's size is a function of (net, way, chunk): no episode size enters it. */
    size_t bytes = esm_protonet_stream_bytes(&net, 5, 32);
    CHECK(bytes == esm_protonet_stream_bytes(&net, 5, 32));
    CHECK(esm_protonet_stream_bytes(&net, 5, 64) > bytes);
    CHECK(bytes < esm_net_ws_bytes(&net, 64, 0));
    float *p = malloc(net.n_params * sizeof(float));
    REQUIRE(p);
    esm_net_init_params(&net, 3, p, NULL);
    esm_protonet_stream *ws;
    REQUIRE_OK(esm_protonet_stream_create(&net, 5, 32, &ws, &err), &err);
    /* one workspace of 32 images scores episodes of 50 and of 2,000 images */
    int shots[2] = {5, 200};
    for (int k = 0; k < 2; k++) {
        synth sy = {5 * shots[k], shots[k], net.in_size};
        esm_episode_stream s = {5, shots[k], 5 * shots[k], synth_rows, &sy};
        float loss = NAN, acc = NAN;
        REQUIRE_OK(esm_protonet_loss_stream(&net, p, NULL, ESM_BN_BATCH, ws, &s, &loss, &acc, &err), &err);
        CHECK(isfinite(loss) && acc >= 0.0f && acc <= 1.0f);
    }
    esm_protonet_stream_free(ws);
    free(p);
}
