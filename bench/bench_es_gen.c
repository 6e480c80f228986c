/* ES generation throughput: the ES trainer on the default model (width 64, depth 4) with 5-way
 * 5-shot 5-query episodes, P = 32 and 64, on 1 thread and on all threads; next to it, in the
 * same run, cblas_sgemm on the conv's im2col GEMM shapes (per image: out (Cout, H*W) = W (Cout,
 * Cin*9) x col (Cin*9, H*W)), one single-threaded GEMM per thread as the trainer runs them.
 * usage: build/bench_es_gen DATA [GENS]   (DATA: a cache file or an Omniglot folder)
 * Prints one JSON line per measurement. Generation time includes everything a step does
 * (members, tell, the centre's batch-norm pass), so GFLOP/s is a lower bound for evaluation. */
#define _GNU_SOURCE
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "esmeta.h"

/* Forward FLOPs of one image: conv multiply-adds, then bias, normalise (2), affine (2) and
 * ReLU per conv output, and 3 comparisons per pooled output. */
static void image_flops(const esm_net *net, double *conv, double *all)
{
    *conv = *all = 0;
    for (int b = 0; b < net->cfg.depth; b++) {
        const esm_block *k = &net->block[b];
        double c = 2.0 * k->cout * k->cin * 9 * k->h * k->w;
        *conv += c;
        *all += c + 6.0 * k->cout * k->h * k->w + 3.0 * k->cout * k->ho * k->wo;
    }
}

static int bench_generations(const esm_dataset *ds, const esm_split *sp, int pop, int threads, int gens)
{
    esm_train_config c = esm_train_config_default(ESM_TRAINER_ES);
    c.pop = pop;
    c.centre_every = 0;
    esm_err err = {0};
    esm_trainer *t = NULL;
    omp_set_num_threads(threads);
    if (esm_trainer_create(&c, ds, sp, &t, &err) != ESM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double *dt = malloc((size_t)gens * sizeof *dt);
    esm_train_stats s = {0};
    int ok = dt && bench_time_steps(t, gens, dt, &s, &err);
    if (ok) {
        esm_model_view m = esm_trainer_model(t);
        double conv, all, med = dt[gens / 2];
        image_flops(&m.net, &conv, &all);
        printf("{\"bench\":\"es_generation\",\"pop\":%d,\"threads\":%d,\"gens\":%d,\"median_s\":%.4f,"
               "\"min_s\":%.4f,\"images_per_s\":%.1f,\"gflops_conv\":%.2f,\"gflops_all\":%.2f}\n",
               pop, threads, gens, med, dt[0], s.images / med, s.images * conv / med * 1e-9,
               s.images * all / med * 1e-9);
    } else
        fprintf(stderr, "%s\n", err.msg);
    free(dt);
    esm_trainer_free(t);
    return !ok;
}

/* Every thread runs its own single-threaded GEMMs (inside an active parallel region the
 * OpenMP build of OpenBLAS does not thread); returns the aggregate GFLOP/s. */
static double bench_sgemm(int m, int n, int k, int threads, double seconds)
{
    double flops = 0, t0 = now_s(), elapsed = 0;
    omp_set_num_threads(threads);
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    {
        float *a = malloc((size_t)m * k * sizeof *a), *b = malloc((size_t)k * n * sizeof *b);
        float *c = calloc((size_t)m * n, sizeof *c);
        for (size_t i = 0; a && i < (size_t)m * k; i++)
            a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; b && i < (size_t)k * n; i++)
            b[i] = (float)(i % 5) * 0.1f;
        for (int rep = 0; a && b && c && now_s() - t0 < seconds; rep++)
            for (int r = 0; r < 20; r++, flops += 2.0 * m * n * k)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 1.0f, c, n);
        free(a), free(b), free(c);
    }
    elapsed = now_s() - t0;
    printf("{\"bench\":\"sgemm\",\"m\":%d,\"n\":%d,\"k\":%d,\"threads\":%d,\"gflops\":%.2f}\n", m, n, k, threads,
           flops / elapsed * 1e-9);
    return flops / elapsed * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA [GENS]\n", argv[0]);
        return 2;
    }
    int gens = argc > 2 ? atoi(argv[2]) : 5;
    int maxt = omp_get_max_threads();
    esm_err err = {0};
    esm_dataset *ds = NULL;
    esm_split sp = {0};
    if (esm_dataset_load(argv[1], NULL, &ds, &err) != ESM_OK || esm_split_get(ds, "trainval", &sp, &err) != ESM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("{\"bench\":\"setup\",\"max_threads\":%d,\"blas\":\"%s\",\"gens\":%d}\n", maxt, esm_get_features().blas,
           gens);
    int threads[2] = {1, maxt}, fail = 0;
    /* The conv GEMMs of blocks 2 and 3 (14x14 and 7x7 outputs): most of the forward FLOPs. */
    for (int i = 0; i < 2; i++) {
        bench_sgemm(64, 196, 576, threads[i], 1.0);
        bench_sgemm(64, 49, 576, threads[i], 1.0);
    }
    for (int i = 0; i < 2 && !fail; i++)
        for (int pop = 32; pop <= 64 && !fail; pop *= 2)
            fail = bench_generations(ds, &sp, pop, threads[i], gens);
    esm_split_free(&sp);
    esm_dataset_free(ds);
    return fail;
}
