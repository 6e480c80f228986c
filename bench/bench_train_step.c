/* One backprop training step of the conv-4 ProtoNet (forward, backward, Adam) on a synthetic
 * episode, with T threads, next to OpenBLAS SGEMM GFLOP/s measured in the same run (T concurrent
 * single-threaded GEMMs): the ceiling the step's convolutions (im2col GEMMs) could reach.
 * usage: build/bench_train_step [way shot query reps threads]; prints JSON lines. peak_rss_mib is
 * the process's peak (getrusage) after the timed steps, before the SGEMM buffers exist. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "esmeta.h"

/* SGEMM shaped like block 2's im2col product, (64 x 576) * (576 x N), one single-threaded GEMM
 * per thread at once, as the step's image partitions run them: the summed GFLOP/s. */
static double sgemm_gflops(int reps, int threads)
{
    int m = 64, k = 576, n = 8192;
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
        float *c = malloc(sizeof(float) * (size_t)m * n);
        double best = 0;
        if (a && b && c) {
            esm_gauss_fill(3, 0, 0, a, (size_t)m * k);
            esm_gauss_fill(3, 1, 0, b, (size_t)k * n);
            for (int r = 0; r <= reps; r++) {
                double t0 = now_s();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
                double g = 2.0 * m * k * n / (now_s() - t0) / 1e9;
                if (r > 0 && g > best)
                    best = g;
            }
        }
        total += best;
        free(a), free(b), free(c);
    }
    return total;
}

typedef struct {
    const esm_net *net;
    esm_adam *adam;
    float *p, *g, *bn;
    const float *sup, *qry;
    const int *labels;
    int way, shot, nq;
    esm_err err;
    esm_protonet_ws *ws;
} step_ctx;

/* One training step: forward, backward, Adam. */
static int train_step(void *ctx)
{
    step_ctx *c = ctx;
    float loss, acc;
    if (esm_protonet_loss_grad(c->net, c->p, c->bn, ESM_BN_TRAIN, c->ws, c->sup, c->way, c->shot, c->qry, c->labels,
                               c->nq, &loss, &acc, c->g, &c->err) != ESM_OK)
        return 1;
    esm_adam_step(c->adam, c->p, c->g);
    return 0;
}

int main(int argc, char **argv)
{
    int way = argc > 1 ? atoi(argv[1]) : 60, shot = argc > 2 ? atoi(argv[2]) : 5;
    int query = argc > 3 ? atoi(argv[3]) : 5, reps = argc > 4 ? atoi(argv[4]) : 7;
    int threads = argc > 5 ? atoi(argv[5]) : omp_get_num_procs();
    if (way < 1 || shot < 1 || query < 1 || reps < 1 || reps > 100 || threads < 1) {
        fprintf(stderr, "usage: bench_train_step [way shot query reps threads]\n");
        return 2;
    }
    esm_blas_single_thread();
    omp_set_num_threads(threads);
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = esm_net_config_default();
    esm_adam adam;
    esm_adam_config ac = esm_adam_config_default(1e-3f);
    if (esm_net_init(&net, &cfg, &err) != ESM_OK || esm_adam_init(&adam, net.n_params, &ac, &err) != ESM_OK) {
        fprintf(stderr, "bench_train_step: %s\n", err.msg);
        return 1;
    }
    int ns = way * shot, nq = way * query;
    float *sup = malloc((size_t)ns * net.in_size * sizeof(float)), *qry = malloc((size_t)nq * net.in_size * sizeof(float));
    float *p = malloc(net.n_params * sizeof(float)), *g = malloc(net.n_params * sizeof(float));
    float *bn = malloc(net.n_bn * sizeof(float));
    int *labels = malloc((size_t)nq * sizeof(int));
    for (size_t i = 0; i < (size_t)ns * net.in_size; i++)
        sup[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
    for (size_t i = 0; i < (size_t)nq * net.in_size; i++)
        qry[i] = (float)((i * 40503u) % 1000) / 1000.0f;
    for (int i = 0; i < nq; i++)
        labels[i] = i / query;
    esm_net_init_params(&net, 1, p, bn);
    esm_protonet_ws *ws;
    if (esm_protonet_ws_create(&net, way, shot, nq, 1, &ws, &err) != ESM_OK ||
        esm_protonet_ws_set_threads(ws, threads, &err) != ESM_OK) {
        fprintf(stderr, "bench_train_step: %s\n", err.msg);
        return 1;
    }
    step_ctx c = {&net, &adam, p, g, bn, sup, qry, labels, way, shot, nq, {0}, ws};
    double t[100];
    if (!bench_time(train_step, &c, reps, t)) {
        fprintf(stderr, "bench_train_step: %s\n", c.err.msg);
        return 1;
    }
    double step = t[reps / 2], rss = bench_peak_rss_mib();
    /* Training convolutions: forward, input gradient (not for block 1) and weight gradient. */
    double f1 = conv_flops_per_image(&net), first = 2.0 * net.block[0].cout * net.block[0].cin * 9 * 28 * 28;
    double flops = (double)(ns + nq) * (3 * f1 - first);
    double peak = sgemm_gflops(5, threads);
    printf("{\"what\":\"esmeta_train_step\",\"way\":%d,\"shot\":%d,\"query\":%d,\"threads\":%d,\"reps\":%d,"
           "\"s_per_step\":%.4f,\"min_s_per_step\":%.4f,\"images_per_s\":%.0f,\"conv_gflop_per_s\":%.1f,"
           "\"sgemm_gflop_per_s\":%.1f,\"fraction_of_sgemm\":%.2f,\"peak_rss_mib\":%.1f}\n",
           way, shot, query, threads, reps, step, t[0], (ns + nq) / step, flops / step / 1e9, peak,
           flops / step / 1e9 / peak, rss);
    esm_protonet_ws_free(ws);
    esm_adam_free(&adam);
    free(sup), free(qry), free(p), free(g), free(bn), free(labels);
    return 0;
}
