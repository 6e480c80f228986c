/* Times the conv-4 ProtoNet on one 60-way 5-shot 5-query episode (600 28x28 images),
 * single-threaded BLAS: forward only (what an ES evaluation costs) and forward + backward.
 * Usage: build/bench_model [way shot query reps] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "esmeta.h"

int main(int argc, char **argv)
{
    int way = argc > 1 ? atoi(argv[1]) : 60, shot = argc > 2 ? atoi(argv[2]) : 5;
    int query = argc > 3 ? atoi(argv[3]) : 5, reps = argc > 4 ? atoi(argv[4]) : 5;
    if (way < 1 || shot < 1 || query < 1 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: bench_model [way shot query reps]\n");
        return 2;
    }
    openblas_set_num_threads(1);
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
    esm_protonet_ws *fws, *bws;
    if (esm_protonet_ws_create(&net, way, shot, nq, 0, &fws, &err) != ESM_OK ||
        esm_protonet_ws_create(&net, way, shot, nq, 1, &bws, &err) != ESM_OK) {
        fprintf(stderr, "bench_model: %s\n", err.msg);
        return 1;
    }
    double t_fwd[100], t_bwd[100];
    float loss = 0, acc = 0;
    for (int r = 0; r <= reps; r++) { /* rep 0 warms caches and page-faults the workspace */
        double t0 = now_s();
        esm_protonet_loss(&net, p, NULL, ESM_BN_BATCH, fws, sup, way, shot, qry, labels, nq, &loss, &acc, &err);
        double t1 = now_s();
        esm_protonet_loss_grad(&net, p, NULL, ESM_BN_BATCH, bws, sup, way, shot, qry, labels, nq, &loss, &acc, g,
                               &err);
        double t2 = now_s();
        if (r > 0)
            t_fwd[r - 1] = t1 - t0, t_bwd[r - 1] = t2 - t1;
    }
    qsort(t_fwd, reps, sizeof(double), cmp_d);
    qsort(t_bwd, reps, sizeof(double), cmp_d);
    /* conv multiply-adds dominate: 2 * cout * cin*9 * h*w per image per block */
    double flops = 0;
    for (int b = 0; b < net.cfg.depth; b++) {
        const esm_block *k = &net.block[b];
        flops += 2.0 * k->cout * k->cin * 9 * k->h * k->w * (ns + nq);
    }
    printf("episode %d-way %d-shot %d-query (%d images), %zu params, 1 BLAS thread, median of %d\n", way, shot,
           query, ns + nq, net.n_params, reps);
    printf("forward:            %8.1f ms  (%.1f GFLOP/s conv)\n", t_fwd[reps / 2] * 1e3, flops / t_fwd[reps / 2] * 1e-9);
    printf("forward + backward: %8.1f ms  (loss %.4f)\n", t_bwd[reps / 2] * 1e3, loss);
    printf("workspace: forward %.1f MiB, with backward %.1f MiB\n", esm_net_ws_bytes(&net, ns + nq, 0) / 1048576.0,
           esm_net_ws_bytes(&net, ns + nq, 1) / 1048576.0);
    esm_protonet_ws_free(fws);
    esm_protonet_ws_free(bws);
    free(sup), free(qry), free(p), free(g), free(labels);
    return 0;
}
