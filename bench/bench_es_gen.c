/* ES generation throughput: the ES trainer on the default model (width 64, depth 4) with 5-way
 * 5-shot 5-query episodes, P = 32 and 64, on 1 thread and on all threads; next to it, in the
 * same run, cblas_sgemm on the conv's im2col GEMM shapes (per image: out (Cout, H*W) = W (Cout,
 * Cin*9) x col (Cin*9, H*W)), one single-threaded GEMM per thread as the trainer runs them.
 * usage: build/bench_es_gen DATA [GENS] [--only gen|sgemm|ceiling] [--pop P] [--threads T] [--sgemm-s S]
 *                          [--width W]
 *   (DATA: a cache file or an Omniglot folder; not needed with --only sgemm). Without options it
 *   runs everything above in one process; the options pick one measurement (bench/report.sh runs
 *   one per process so that each line's peak_rss_mib is that measurement's own). --width sets the
 *   net's width (default 64).
 * --only ceiling measures, in one process, the generation and its own SGEMM ceiling: every conv
 * GEMM one member's forward would make as im2col + SGEMM (the shapes of this width, grouped as the
 * conv's im2col groups them; the forward itself is a direct conv, src/model/conv_direct.c), run
 * back to back for the same time as the generations, as T concurrent single-threaded calls and as
 * one T-threaded call; the ceiling is the faster of the two, and "fraction" is the generation's
 * speed over it.
 * Prints one JSON line per measurement. Generation time includes everything a step does
 * (members, tell, the centre's batch-norm pass), so GFLOP/s is a lower bound for evaluation.
 * peak_rss_mib is the process's peak so far (getrusage), sampled after the measurement. */
#define _GNU_SOURCE
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "esmeta.h"
#include "model/ws.h" /* esm_conv3x3_group_images: the conv's im2col GEMM grouping */

void openblas_set_num_threads(int);

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

/* Median seconds per generation, or a negative value on failure. */
static double bench_generations(const esm_dataset *ds, const esm_split *sp, int pop, int threads, int gens, int width)
{
    esm_train_config c = esm_train_config_default(ESM_TRAINER_ES);
    c.pop = pop;
    c.net.width = width;
    c.centre_every = 0;
    esm_err err = {0};
    esm_trainer *t = NULL;
    omp_set_num_threads(threads);
    if (esm_trainer_create(&c, ds, sp, &t, &err) != ESM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    double *dt = malloc((size_t)gens * sizeof *dt);
    esm_train_stats s = {0};
    int ok = dt && bench_time_steps(t, gens, dt, &s, &err);
    if (ok) {
        esm_model_view m = esm_trainer_model(t);
        double conv, all, med = dt[gens / 2];
        image_flops(&m.net, &conv, &all);
        printf("{\"what\":\"es_generation\",\"width\":%d,\"pop\":%d,\"threads\":%d,\"gens\":%d,\"s_per_gen\":%.4f,"
               "\"min_s_per_gen\":%.4f,\"images_per_s\":%.1f,\"conv_gflop_per_s\":%.2f,\"all_gflop_per_s\":%.2f,"
               "\"peak_rss_mib\":%.1f}\n",
               width, pop, threads, gens, med, dt[0], s.images / med, s.images * conv / med * 1e-9,
               s.images * all / med * 1e-9, bench_peak_rss_mib());
        fflush(stdout);
    } else
        fprintf(stderr, "%s\n", err.msg);
    double med = ok ? dt[gens / 2] : -1;
    free(dt);
    esm_trainer_free(t);
    return med;
}

/* The conv GEMMs of one member's forward on n images, as an im2col + SGEMM forward makes them
 * (esm_conv3x3_backward's grouping). */
typedef struct {
    int m, n, k;
} gemm_shape;

static int member_gemms(const esm_net *net, int images, gemm_shape *out, int cap)
{
    int count = 0;
    for (int b = 0; b < net->cfg.depth; b++) {
        const esm_block *k = &net->block[b];
        int hw = k->h * k->w, g = esm_conv3x3_group_images(hw);
        for (int i0 = 0; i0 < images && count < cap; i0 += g)
            out[count++] = (gemm_shape){k->cout, (images - i0 < g ? images - i0 : g) * hw, k->cin * 9};
    }
    return count;
}

/* Runs the member's GEMMs back to back for `seconds` on `threads` concurrent threads with
 * `blas_threads` each; returns seconds per member (wall time over members done, all threads). */
static double time_member_gemms(const gemm_shape *sh, int ns, int threads, int blas_threads, double seconds)
{
    size_t amax = 0, bmax = 0, cmax = 0;
    for (int i = 0; i < ns; i++) {
        amax = (size_t)sh[i].m * sh[i].k > amax ? (size_t)sh[i].m * sh[i].k : amax;
        bmax = (size_t)sh[i].k * sh[i].n > bmax ? (size_t)sh[i].k * sh[i].n : bmax;
        cmax = (size_t)sh[i].m * sh[i].n > cmax ? (size_t)sh[i].m * sh[i].n : cmax;
    }
    openblas_set_num_threads(blas_threads);
    long members = 0;
    double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : members)
    {
        float *a = malloc(amax * sizeof *a), *b = malloc(bmax * sizeof *b), *c = calloc(cmax, sizeof *c);
        if (a && b && c) {
            esm_gauss_fill(5, 0, 0, a, amax);
            esm_gauss_fill(5, 1, 0, b, bmax);
            for (; now_s() - t0 < seconds; members++)
                for (int i = 0; i < ns; i++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sh[i].m, sh[i].n, sh[i].k, 1.0f, a,
                                sh[i].k, b, sh[i].n, 0.0f, c, sh[i].n);
        }
        free(a), free(b), free(c);
    }
    double elapsed = now_s() - t0;
    esm_blas_single_thread();
    return members > 0 ? elapsed / members : -1;
}

/* The generation and, in the same process, its SGEMM ceiling (see the header). */
static int bench_ceiling(const esm_dataset *ds, const esm_split *sp, int pop, int threads, int gens, int width)
{
    esm_train_config c = esm_train_config_default(ESM_TRAINER_ES);
    c.net.width = width;
    esm_net net;
    esm_err err = {0};
    if (esm_net_init(&net, &c.net, &err) != ESM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int images = c.shape.way * (c.shape.shot + c.shape.query) * c.episodes_per_gen;
    gemm_shape sh[256];
    int ns = member_gemms(&net, images, sh, 256);
    double t_gen = bench_generations(ds, sp, pop, threads, gens, width);
    if (t_gen <= 0)
        return 1;
    double budget = t_gen * gens;
    double conc = time_member_gemms(sh, ns, threads, 1, budget);
    double thr = threads > 1 ? time_member_gemms(sh, ns, 1, threads, budget) : conc;
    double best = conc < thr ? conc : thr, ceil_gen = best * pop;
    printf("{\"what\":\"es_ceiling\",\"width\":%d,\"pop\":%d,\"threads\":%d,\"gemms_per_member\":%d,"
           "\"s_per_gen\":%.4f,\"ceiling_s_per_gen\":%.4f,\"concurrent_s_per_member\":%.6f,"
           "\"threaded_s_per_member\":%.6f,\"fraction\":%.3f}\n",
           width, pop, threads, ns, t_gen, ceil_gen, conc, thr, ceil_gen / t_gen);
    fflush(stdout);
    return 0;
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
    printf("{\"what\":\"sgemm\",\"m\":%d,\"n\":%d,\"k\":%d,\"threads\":%d,\"seconds\":%.2f,\"gflop_per_s\":%.2f,"
           "\"peak_rss_mib\":%.1f}\n",
           m, n, k, threads, elapsed, flops / elapsed * 1e-9, bench_peak_rss_mib());
    fflush(stdout);
    return flops / elapsed * 1e-9;
}

static int usage(const char *self)
{
    fprintf(stderr, "usage: %s DATA [GENS] [--only gen|sgemm|ceiling] [--pop P] [--threads T] [--sgemm-s S] "
                    "[--width W]\n", self);
    return 2;
}

int main(int argc, char **argv)
{
    esm_blas_single_thread(); /* esmeta's threads only, as the CLI runs */
    const char *data = NULL, *only = "";
    int gens = 5, pop = 0, nthreads = 0, maxt = omp_get_max_threads(), npos = 0, width = 64;
    double sgemm_s = 1.0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--only"))
            only = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--pop"))
            pop = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--threads"))
            nthreads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--width"))
            width = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--sgemm-s"))
            sgemm_s = atof(argv[++i]);
        else if (argv[i][0] != '-' && npos == 0)
            data = argv[i], npos++;
        else if (argv[i][0] != '-' && npos == 1)
            gens = atoi(argv[i]), npos++;
        else
            return usage(argv[0]);
    }
    int ceiling = !strcmp(only, "ceiling");
    int do_sgemm = !*only || !strcmp(only, "sgemm"), do_gen = strcmp(only, "sgemm") != 0;
    if ((*only && strcmp(only, "gen") && strcmp(only, "sgemm") && !ceiling) || (do_gen && !data) || gens < 1 ||
        pop < 0 || nthreads < 0 || width < 1 || !(sgemm_s > 0))
        return usage(argv[0]);
    esm_err err = {0};
    esm_dataset *ds = NULL;
    esm_split sp = {0};
    if (do_gen &&
        (esm_dataset_load(data, NULL, &ds, &err) != ESM_OK || esm_split_get(ds, "trainval", &sp, &err) != ESM_OK)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (!*only)
        printf("{\"what\":\"setup\",\"max_threads\":%d,\"blas\":\"%s\",\"gens\":%d}\n", maxt, esm_get_features().blas,
               gens);
    int threads[2] = {1, maxt}, nt = 2, pops[2] = {32, 64}, np = 2, fail = 0;
    if (nthreads)
        threads[0] = nthreads, nt = 1;
    if (pop)
        pops[0] = pop, np = 1;
    /* The conv GEMMs of blocks 2 and 3 (14x14 and 7x7 outputs): most of the forward FLOPs. */
    for (int i = 0; i < nt && do_sgemm; i++) {
        bench_sgemm(64, 196, 576, threads[i], sgemm_s);
        bench_sgemm(64, 49, 576, threads[i], sgemm_s);
    }
    for (int i = 0; i < nt && do_gen && !fail; i++)
        for (int j = 0; j < np && !fail; j++)
            fail = ceiling ? bench_ceiling(ds, &sp, pops[j], threads[i], gens, width)
                           : bench_generations(ds, &sp, pops[j], threads[i], gens, width) < 0;
    if (do_gen)
        esm_split_free(&sp);
    esm_dataset_free(ds);
    return fail;
}
