/* GPU ES generation throughput: the CUDA population evaluator (--device cuda) on the default
 * model (width 64, depth 4) with 5-way 5-shot 5-query episodes, P = 64 .. PMAX (default 16384;
 * the trainer steps stop at 1024: their tell is on the CPU).
 * usage: build/bench_cuda_gen DATA [GENS] [cuda|cuda-tf32] [PMAX]
 *   DATA: a cache file or an Omniglot folder, or "synthetic" for random sparse images (the
 *   evaluator's speed does not depend on the pixels; the trainer steps need real data and are
 *   skipped then)
 * Prints one JSON line per measurement:
 *   "cuda_eval"      the backend alone (noise, members, forward, head; what crosses PCIe is the
 *                    centre, the scales, the episode and P losses): generations/s and achieved
 *                    conv TFLOP/s (2 * Cout * Cin * 9 * H * W per image and member; the rest of
 *                    the forward is under 2% of the FLOPs and not counted);
 *   "cuda_trainer"   whole ES-trainer steps with that device (adds tell and the centre's CPU
 *                    batch-norm pass), as `esmeta train --device cuda` runs them.
 * Exits 1 with a JSON error line on a build or machine without CUDA. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "esmeta.h"
#include "popeval/popeval.h"

/* Random sparse "ink" in [0, 1], labels class-major: the shapes and the sparsity of Omniglot. */
static void synthetic_episode(esm_episode *ep, uint32_t index)
{
    esm_episode_shape s = ep->shape;
    esm_stream r = esm_stream_make(7, index, 0, 0);
    size_t ns = (size_t)s.way * s.shot * ep->image_size, nq = (size_t)s.way * s.query * ep->image_size;
    for (size_t i = 0; i < ns; i++)
        ep->support[i] = esm_stream_below(&r, 5) == 0 ? esm_stream_uniform(&r) : 0.0f;
    for (size_t i = 0; i < nq; i++)
        ep->query[i] = esm_stream_below(&r, 5) == 0 ? esm_stream_uniform(&r) : 0.0f;
    for (int q = 0; q < s.way * s.query; q++)
        ep->query_label[q] = q / s.query;
}

static int bench_eval(const esm_dataset *ds, const esm_split *sp, const char *device, int pop, int gens)
{
    esm_err err = {0};
    esm_net_config nc = esm_net_config_default();
    esm_net net;
    esm_episode_shape shape = {5, 5, 5};
    esm_episode ep;
    esm_popeval pe = {0};
    esm_dataset fake;
    memset(&fake, 0, sizeof fake);
    fake.channels = 1, fake.height = 28, fake.width = 28;
    if (esm_net_init(&net, &nc, &err) != ESM_OK || esm_episode_init(&ep, ds ? ds : &fake, shape, &err) != ESM_OK) {
        printf("{\"bench\":\"cuda_eval\",\"error\":\"%s\"}\n", err.msg);
        return 1;
    }
    float *mean = malloc(net.n_params * sizeof *mean), *scale = malloc(net.n_params * sizeof *scale);
    float *res = malloc(3 * (size_t)pop * sizeof *res);
    double *dt = malloc((size_t)gens * sizeof *dt);
    int ok = mean && scale && res && dt;
    if (ok) {
        esm_net_init_params(&net, 1, mean, NULL);
        for (size_t j = 0; j < net.n_params; j++)
            scale[j] = 0.02f;
        ok = esm_popeval_open(device, &net, shape, pop, 0, 0, &pe, &err) == ESM_OK;
    }
    for (int g = -1; ok && g < gens; g++) { /* g = -1: warm-up (cuBLAS heuristics, first touches) */
        if (ds)
            esm_episode_sample(&ep, ds, sp, 1, (uint64_t)(g + 1));
        else
            synthetic_episode(&ep, (uint32_t)(g + 1));
        esm_popeval_job job = {.eps = &ep, .n_eps = 1, .begin = 0, .count = pop,
                               .pop = {.mean = mean, .scale = scale, .dim = net.n_params, .popsize = pop, .seed = 42,
                                       .gen = (uint32_t)(g + 1), .antithetic = 1}};
        double t0 = now_s();
        ok = esm_popeval_evaluate(&pe, &job, res, res + pop, res + 2 * pop, &err) == ESM_OK;
        if (g >= 0)
            dt[g] = now_s() - t0;
    }
    if (ok) {
        qsort(dt, (size_t)gens, sizeof *dt, cmp_d);
        double med = dt[gens / 2], images = (double)pop * (shape.way * (shape.shot + shape.query));
        double mean_loss = 0;
        for (int k = 0; k < pop; k++)
            mean_loss += res[k] / pop;
        printf("{\"bench\":\"cuda_eval\",\"data\":\"%s\",\"device\":\"%s\",\"pop\":%d,\"gens\":%d,\"median_s\":%.5f,\"min_s\":%.5f,"
               "\"gens_per_s\":%.2f,\"images_per_s\":%.0f,\"conv_tflops\":%.3f,\"mean_loss\":%.5f}\n",
               ds ? "omniglot" : "synthetic", device, pop, gens, med, dt[0], 1.0 / med, images / med,
               images * conv_flops_per_image(&net) / med * 1e-12, mean_loss);
    } else
        printf("{\"bench\":\"cuda_eval\",\"device\":\"%s\",\"pop\":%d,\"error\":\"%s\"}\n", device, pop, err.msg);
    esm_popeval_close(&pe);
    esm_episode_free(&ep);
    free(mean), free(scale), free(res), free(dt);
    return !ok;
}

static int bench_trainer(const esm_dataset *ds, const esm_split *sp, const char *device, int pop, int gens)
{
    esm_train_config c = esm_train_config_default(ESM_TRAINER_ES);
    c.pop = pop;
    c.centre_every = 0;
    snprintf(c.device, sizeof c.device, "%s", device);
    esm_err err = {0};
    esm_trainer *t = NULL;
    double *dt = malloc((size_t)gens * sizeof *dt);
    esm_train_stats s = {0};
    int ok = dt && esm_trainer_create(&c, ds, sp, &t, &err) == ESM_OK && bench_time_steps(t, gens, dt, &s, &err);
    if (ok) {
        double med = dt[gens / 2];
        printf("{\"bench\":\"cuda_trainer\",\"device\":\"%s\",\"pop\":%d,\"gens\":%d,\"median_s\":%.5f,"
               "\"gens_per_s\":%.2f,\"images_per_s\":%.0f,\"loss\":%.5f}\n",
               device, pop, gens, med, 1.0 / med, s.images / med, s.loss);
    } else
        printf("{\"bench\":\"cuda_trainer\",\"device\":\"%s\",\"pop\":%d,\"error\":\"%s\"}\n", device, pop, err.msg);
    esm_trainer_free(t);
    free(dt);
    return !ok;
}

int main(int argc, char **argv)
{
    esm_blas_single_thread(); /* esmeta's threads only, as the CLI runs */
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA [GENS] [cuda|cuda-tf32] [PMAX]\n", argv[0]);
        return 2;
    }
    int gens = argc > 2 ? atoi(argv[2]) : 5;
    const char *device = argc > 3 ? argv[3] : "cuda";
    int pmax = argc > 4 ? atoi(argv[4]) : 16384;
    if (gens < 1)
        gens = 1;
    if (esm_popeval_cuda_devices() < 1) {
        printf("{\"bench\":\"cuda_gen\",\"error\":\"no CUDA device (cuda build: %s)\"}\n",
               esm_get_features().cuda ? "true" : "false");
        return 1;
    }
    esm_err err = {0};
    esm_dataset *ds = NULL;
    esm_split sp = {0};
    int synthetic = !strcmp(argv[1], "synthetic");
    if (!synthetic &&
        (esm_dataset_load(argv[1], NULL, &ds, &err) != ESM_OK || esm_split_get(ds, "trainval", &sp, &err) != ESM_OK)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int fail = 0;
    for (int pop = 64; pop <= pmax; pop *= 2)
        fail |= bench_eval(ds, &sp, device, pop, gens);
    for (int pop = 64; !synthetic && pop <= 1024 && pop <= pmax; pop *= 4)
        fail |= bench_trainer(ds, &sp, device, pop, gens);
    if (!synthetic)
        esm_split_free(&sp);
    esm_dataset_free(ds);
    return fail;
}
