/* Same bits for any thread count, at sizes where a threaded BLAS would split its GEMMs (width 64:
 * block 1's M*N*K is 64*196*576, well past OpenBLAS's threading threshold). scripts/run-checks runs
 * this file once more under every OpenBLAS kernel the CPU can execute (OPENBLAS_CORETYPE). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

#define WIDE "--width 64 --depth 4 --seed 5 --quiet"

static float *random_images(int n, int size, uint64_t seed)
{
    float *x = malloc((size_t)n * size * sizeof *x);
    esm_stream s = esm_stream_make(seed, 78, 0, 0);
    for (size_t i = 0; x && i < (size_t)n * size; i++)
        x[i] = esm_stream_uniform(&s);
    return x;
}

/* Forward (batch statistics) and backward of one batch with the workspace split over `threads`. */
static esm_status pass(const esm_net *net, const float *p, const float *x, int n, int threads, float *emb, float *grad,
                       esm_err *err)
{
    esm_net_ws *ws;
    esm_status st = esm_net_ws_create(net, n, 1, &ws, err);
    if (st != ESM_OK)
        return st;
    st = esm_net_ws_set_threads(ws, threads, err);
    if (st == ESM_OK)
        st = esm_net_forward(net, p, NULL, ws, x, n, ESM_BN_BATCH, emb, err);
    if (st == ESM_OK)
        st = esm_net_backward(net, p, ws, emb, grad, err); /* d_emb = emb: gradient of sum(emb^2)/2 */
    esm_net_ws_free(ws);
    return st;
}

TEST(determinism_net_pass_any_thread_count)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = {.in_channels = 1, .in_height = 28, .in_width = 28, .width = 64, .depth = 4};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    /* 100 images: 4 backward partitions of block 0, uneven shares for 3 threads */
    enum { N = 100 };
    float *x = random_images(N, net.in_size, 8), *p = malloc(net.n_params * sizeof *p);
    float *emb[3], *grad[3];
    REQUIRE(x && p);
    esm_net_init_params(&net, 6, p, NULL);
    for (int t = 0; t < 3; t++) {
        emb[t] = malloc((size_t)N * net.emb_dim * sizeof(float));
        grad[t] = malloc(net.n_params * sizeof(float));
        REQUIRE(emb[t] && grad[t]);
        REQUIRE_OK(pass(&net, p, x, N, t + 1, emb[t], grad[t], &err), &err);
    }
    for (int t = 1; t < 3; t++) {
        CHECKF(!memcmp(emb[0], emb[t], (size_t)N * net.emb_dim * sizeof(float)), "%d threads: other embeddings",
               t + 1);
        CHECKF(!memcmp(grad[0], grad[t], net.n_params * sizeof(float)), "%d threads: other gradient", t + 1);
    }
    /* The partitioned weight gradient is the whole-batch one up to float rounding. */
    float *whole = malloc(net.n_params * sizeof *whole);
    REQUIRE(whole);
    esm_net_ws *ws;
    REQUIRE_OK(esm_net_ws_create(&net, N, 1, &ws, &err), &err);
    REQUIRE_OK(esm_net_forward(&net, p, NULL, ws, x, N, ESM_BN_BATCH, emb[1], &err), &err);
    REQUIRE_OK(esm_net_backward(&net, p, ws, emb[1], whole, &err), &err);
    CHECK(!memcmp(whole, grad[0], net.n_params * sizeof(float)));
    CHECK(esm_net_ws_set_threads(ws, 0, &err) == ESM_EINVAL && strstr(err.msg, "threads"));
    esm_net_ws_free(ws);
    for (int t = 0; t < 3; t++)
        free(emb[t]), free(grad[t]);
    free(whole), free(x), free(p);
}

static int same_file(const char *a, const char *b)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

static int run_ok(esm_tctx *t_, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_ok(esm_tctx *t_, const char *fmt, ...)
{
    char args[8192], out[4096], err[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = esm_test_run_cli(args, out, sizeof out, err, sizeof err);
    if (rc != 0)
        esm_tfail(t_, __FILE__, __LINE__, "esmeta %s -> exit %d: %s", args, rc, err);
    return rc == 0;
}

TEST(determinism_backprop_checkpoint_any_thread_count)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    /* 20-way 5-shot 5-query: 200 images a step, 7 backward partitions */
    const char *run = "train --data %s " WIDE " --way 20 --shot 5 --query 5 --episodes 3 --threads %d --out %s/t%d";
    for (int t = 1; t <= 2; t++)
        REQUIRE(run_ok(t_, run, cache, t, tmp, t));
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/t1/checkpoint.bin", tmp);
    snprintf(b, sizeof b, "%s/t2/checkpoint.bin", tmp);
    CHECKF(same_file(a, b), "backprop with 1 and 2 threads ends with other bits");
}

TEST(determinism_eval_one_episode_any_thread_count)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    esm_err err = {0};
    esm_split sp;
    REQUIRE_OK(esm_split_get(ds, "test", &sp, &err), &err);
    esm_net net;
    esm_net_config cfg = {.in_channels = 1, .in_height = 28, .in_width = 28, .width = 64, .depth = 4};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    float *p = malloc(net.n_params * sizeof *p), *bn = malloc(net.n_bn * sizeof *bn);
    REQUIRE(p && bn);
    esm_net_init_params(&net, 4, p, bn);
    esm_episode_shape shape = {.way = 20, .shot = 5, .query = 5};
    esm_eval_result r[2];
    for (int t = 0; t < 2; t++)
        REQUIRE_OK(esm_evaluate(&net, p, bn, ds, &sp, shape, 1, 11, t + 1, &r[t], &err), &err);
    CHECKF(r[0].mean_loss == r[1].mean_loss && r[0].mean_acc == r[1].mean_acc, "loss %.9g vs %.9g", r[0].mean_loss,
           r[1].mean_loss);
    CHECK(r[0].mean_loss > 0);
    free(p), free(bn);
    esm_split_free(&sp);
    esm_dataset_free(ds);
}
