/* Times the conv-4 ProtoNet on one synthetic episode (default 60-way 5-shot 5-query: 600 28x28
 * images) split over T threads (default 1; the library's own image partitions, BLAS single-threaded): forward only (what an ES evaluation costs: images/s and
 * conv GFLOP/s of the embedding network), then forward + backward. The two phases run one after
 * the other, the forward workspace freed before the backward one is made, so each line's
 * peak_rss_mib is that phase's own peak (the backward one is the larger).
 * Usage: build/bench_model [--forward-only] [way shot query reps threads]; prints JSON lines. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "esmeta.h"

typedef struct {
    const esm_net *net;
    const float *p, *sup, *qry;
    const int *labels;
    int way, shot, nq;
    esm_protonet_ws *ws;
    float *g; /* NULL: forward only */
    float loss, acc;
    esm_err err;
} episode_ctx;

static int run_episode(void *ctx)
{
    episode_ctx *c = ctx;
    if (!c->g)
        return esm_protonet_loss(c->net, c->p, NULL, ESM_BN_BATCH, c->ws, c->sup, c->way, c->shot, c->qry, c->labels,
                                 c->nq, &c->loss, &c->acc, &c->err) != ESM_OK;
    return esm_protonet_loss_grad(c->net, c->p, NULL, ESM_BN_BATCH, c->ws, c->sup, c->way, c->shot, c->qry, c->labels,
                                  c->nq, &c->loss, &c->acc, c->g, &c->err) != ESM_OK;
}

/* Times one phase (forward, or forward + backward when c->g is set) and prints its JSON line. */
static int phase(episode_ctx *c, int backward, int reps, int threads)
{
    const char *what = backward ? "forward_backward" : "forward";
    int images = c->way * c->shot + c->nq;
    double dt[100];
    if (esm_protonet_ws_create(c->net, c->way, c->shot, c->nq, backward, &c->ws, &c->err) != ESM_OK ||
        esm_protonet_ws_set_threads(c->ws, threads, &c->err) != ESM_OK || !bench_time(run_episode, c, reps, dt)) {
        fprintf(stderr, "bench_model: %s: %s\n", what, c->err.msg);
        return 1;
    }
    double med = dt[reps / 2], rss = bench_peak_rss_mib();
    /* conv FLOPs of the forward pass (backward adds about twice as many; not counted here) */
    double gflop = conv_flops_per_image(c->net) * images * 1e-9;
    printf("{\"what\":\"%s\",\"way\":%d,\"shot\":%d,\"query\":%d,\"images\":%d,\"params\":%zu,\"threads\":%d,"
           "\"reps\":%d,\"s_per_episode\":%.5f,\"min_s_per_episode\":%.5f,\"images_per_s\":%.1f,"
           "\"forward_conv_gflop_per_s\":%.2f,\"loss\":%.4f,\"workspace_mib\":%.1f,\"peak_rss_mib\":%.1f}\n",
           what, c->way, c->shot, c->nq / c->way, images, c->net->n_params, threads, reps, med, dt[0], images / med,
           gflop / med, c->loss, esm_net_ws_bytes(c->net, images, backward) / 1048576.0, rss);
    fflush(stdout);
    esm_protonet_ws_free(c->ws);
    c->ws = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    int forward_only = argc > 1 && !strcmp(argv[1], "--forward-only");
    argv += forward_only, argc -= forward_only;
    int way = argc > 1 ? atoi(argv[1]) : 60, shot = argc > 2 ? atoi(argv[2]) : 5;
    int query = argc > 3 ? atoi(argv[3]) : 5, reps = argc > 4 ? atoi(argv[4]) : 5;
    int threads = argc > 5 ? atoi(argv[5]) : 1;
    if (way < 1 || shot < 1 || query < 1 || reps < 1 || reps > 100 || threads < 1) {
        fprintf(stderr, "usage: bench_model [--forward-only] [way shot query reps threads]\n");
        return 2;
    }
    esm_blas_single_thread();
    omp_set_num_threads(threads);
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = esm_net_config_default();
    if (esm_net_init(&net, &cfg, &err) != ESM_OK) {
        fprintf(stderr, "bench_model: %s\n", err.msg);
        return 1;
    }
    int ns = way * shot, nq = way * query;
    float *sup = malloc((size_t)ns * net.in_size * sizeof(float));
    float *qry = malloc((size_t)nq * net.in_size * sizeof(float));
    float *p = malloc(net.n_params * sizeof(float)), *g = malloc(net.n_params * sizeof(float));
    int *labels = malloc((size_t)nq * sizeof(int));
    if (!sup || !qry || !p || !g || !labels)
        return 1;
    esm_gauss_fill(1, 0, 0, sup, (size_t)ns * net.in_size);
    esm_gauss_fill(1, 1, 0, qry, (size_t)nq * net.in_size);
    for (int i = 0; i < nq; i++)
        labels[i] = i / query;
    esm_net_init_params(&net, 1, p, NULL);
    episode_ctx c = {.net = &net, .p = p, .sup = sup, .qry = qry, .labels = labels, .way = way, .shot = shot, .nq = nq};
    int fail = phase(&c, 0, reps, threads);
    if (!fail && !forward_only) {
        c.g = g;
        fail = phase(&c, 1, reps, threads);
    }
    free(sup), free(qry), free(p), free(g), free(labels);
    return fail;
}
