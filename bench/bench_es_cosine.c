/* How good is the ES gradient estimate? For one network (a checkpoint's centre, or a fresh init) on
 * training episodes of the training shape, sets openai-es's gradient estimate beside the exact
 * backprop gradient of the same episode's loss (issue 13: is the limit the estimate or the task
 * noise?).
 *
 * usage: build/bench_es_cosine --data CACHE (--checkpoint CKPT [--at-init] | --init-seed N [--width W --depth D])
 *            [--split train] [--way 20 --shot 5 --query 5] [--episodes E] [--pops 64,256,1024]
 *            [--sigma S] [--mean-episodes M] [--seed S] [--threads T]
 * --at-init measures the checkpoint's run at generation 0: its network initialised as the trainer
 * initialised it (the run's seed), with the run's shape and sigma. --init-seed N: a fresh network
 * of --width and --depth initialised with seed N.
 * Defaults: the checkpoint's training shape, width, depth and sigma (a fresh init: 20-way 5-shot
 * 5-query, width 16, depth 3, sigma 0.02); E 20, M 1000, seed 7, 1 thread. M = 1000 rather than
 * 200: late in a run the expected gradient is small beside one episode's (at generation 300 of a
 * 20-way width-16 run, |gbar| was 1.2 against 7.6 for one episode), and 200 episodes leave gbar
 * with noise 0.43 of its size, 1000 with 0.19 (gbar_noise_rel).
 *
 * For each of the E episodes e (episodes (seed, 0..E-1) of the split):
 *   g_e   the backprop gradient of the episode's ProtoNet loss at theta, in batch-statistics batch
 *         norm (ESM_BN_BATCH), the loss ES members are scored on;
 *   ghat  for each P of --pops, from the first P members of one population of max(P) members
 *         (P/2 antithetic pairs, sigma; noise keyed by (seed, e) through the library's generator,
 *         members built and scored by the CPU population evaluator, as training scores them):
 *         "openai-es": the strategy's own estimate (the run's shaping, esm_es_gradient_estimate), and
 *         "antithetic": the unshaped central differences (esm_es_antithetic_gradient); both negated
 *         so that they estimate the gradient of the loss.
 * gbar is the mean of g over M other episodes (seed, 2^40 + m): the expected gradient of the
 * training objective, up to its own noise (gbar_noise_rel: the noise's norm over |gbar|).
 *
 * Stdout, JSON lines: "setup"; "backprop" (cos(g_e, gbar) over the E episodes, the task's own
 * episode-to-episode noise, and cos_episode_expected, the same corrected as below; the check that
 * the evaluator's loss at sigma = 0 equals the backprop loss); one "estimate" per (P, estimator)
 * with the mean, sd, min and max over the episodes of cos_own = cos(ghat_e, g_e), cos_mean =
 * cos(ghat_e, gbar), cos_expected (cos_mean corrected for gbar's own noise: an estimate of the
 * cosine with the expected gradient itself, print_corrected), and norm_ratio = |ghat_e| / |g_e|
 * (openai-es's estimate is in rank units, not on the loss's scale). For the antithetic
 * estimator, proj_own = ghat_e . g_e / |g_e|^2, the share of the exact gradient the estimate
 * carries (1 in expectation where the loss is quadratic at scale sigma; less where smoothing by
 * the noise changes the gradient: ES follows the gradient of the smoothed loss), cos_quadratic is
 * what cos_own would reach if the loss were quadratic at scale sigma
 * (sqrt(K / (K + n + 1)), K = P/2 pairs, n parameters) and d_eff = K (1 / cos_own^2 - 1), the
 * dimension that theory needs to give the measured cosine. Work: max(P) x E member forwards (about
 * 10 ms each on one core for 20-way 5+5, width 16, depth 3) and E + M backprop steps (about 25 ms
 * each): the defaults take about 4 minutes on one idle core, P = 4096 at E = 20 about 14. */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "core/bytes.h"
#include "es/estimate.h"
#include "esmeta.h"
#include "popeval/popeval.h"
#include "train/ckpt_file.h"

#define MAX_POPS 16
#define MEAN_EPISODE_BASE (1ull << 40) /* gbar's episodes: never among the E measured ones */

typedef struct {
    const char *data, *ckpt, *split;
    esm_episode_shape shape;
    int episodes, mean_episodes, threads, width, depth, n_pops, pops[MAX_POPS], have_init, at_init;
    uint64_t seed, init_seed;
    float sigma;
} opts;

typedef struct {
    int n;
    double sum, sq, min, max;
} stat;

static void stat_add(stat *s, double x)
{
    if (!s->n || x < s->min)
        s->min = x;
    if (!s->n || x > s->max)
        s->max = x;
    s->n++, s->sum += x, s->sq += x * x;
}

static double stat_mean(const stat *s) { return s->n ? s->sum / s->n : 0; }

static double stat_sd(const stat *s)
{
    if (s->n < 2)
        return 0;
    double m = stat_mean(s), v = (s->sq - s->n * m * m) / (s->n - 1);
    return v > 0 ? sqrt(v) : 0;
}

static void stat_print(const char *name, const stat *s)
{
    printf("\"%s\":{\"mean\":%.5f,\"sd\":%.5f,\"min\":%.5f,\"max\":%.5f}", name, stat_mean(s), stat_sd(s), s->min,
           s->max);
}

/* What the run measures: the network, the data, and everything reused across episodes. */
typedef struct {
    opts o;
    esm_dataset *ds;
    esm_split sp;
    esm_model model; /* params (and net) of the checkpoint or the fresh init */
    int64_t generation;
    esm_episode ep;
    esm_protonet_ws *ws; /* backprop */
    esm_popeval pe;
    float *g, *gbar, *ghat, *scale0, *loss, *acc, *fit;
    int pmax;
    double noise_rel; /* sqrt(tr Cov(g_e) / M) / |gbar|: gbar's own noise, relative */
} bench;

/* (P, estimator) rows */
typedef struct {
    stat cos_own, cos_mean, norm_ratio, proj; /* proj: ghat_e . g_e / |g_e|^2 */
} row;

static int fail(const esm_err *err)
{
    fprintf(stderr, "bench_es_cosine: %s\n", err->msg);
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: build/bench_es_cosine --data CACHE (--checkpoint CKPT [--at-init] | --init-seed N "
                    "[--width W --depth D]) [--split train] [--way N --shot K --query Q] [--episodes E] "
                    "[--pops P1,P2,...] [--sigma S] [--mean-episodes M] [--seed S] [--threads T]\n");
    return 2;
}

/* Comma-separated even populations of at least 2, at most MAX_POPS of them; 0 on a bad list. */
static int parse_pops(const char *s, int *pops)
{
    int n = 0;
    for (char *end; *s && n < MAX_POPS; s = *end == ',' ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 2 || v % 2 || v > ESM_MAX_POP || (*end && *end != ','))
            return 0;
        pops[n++] = (int)v;
    }
    return *s ? 0 : n;
}

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){.split = "train", .episodes = 20, .mean_episodes = 1000, .threads = 1, .width = 16, .depth = 3,
                .n_pops = 3, .pops = {64, 256, 1024}, .seed = 7};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--at-init")) {
            o->at_init = 1;
            continue;
        }
        if (!v)
            return 0;
        i++;
        if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--checkpoint"))
            o->ckpt = v;
        else if (!strcmp(a, "--init-seed"))
            o->init_seed = strtoull(v, NULL, 10), o->have_init = 1;
        else if (!strcmp(a, "--split"))
            o->split = v;
        else if (!strcmp(a, "--way"))
            o->shape.way = atoi(v);
        else if (!strcmp(a, "--shot"))
            o->shape.shot = atoi(v);
        else if (!strcmp(a, "--query"))
            o->shape.query = atoi(v);
        else if (!strcmp(a, "--episodes"))
            o->episodes = atoi(v);
        else if (!strcmp(a, "--mean-episodes"))
            o->mean_episodes = atoi(v);
        else if (!strcmp(a, "--pops"))
            o->n_pops = parse_pops(v, o->pops);
        else if (!strcmp(a, "--sigma"))
            o->sigma = strtof(v, NULL);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--width"))
            o->width = atoi(v);
        else if (!strcmp(a, "--depth"))
            o->depth = atoi(v);
        else
            return 0;
    }
    return o->data && (!o->ckpt != !o->have_init) && (!o->at_init || o->ckpt) && o->episodes >= 1 &&
           o->mean_episodes >= 2 && o->n_pops > 0 && o->threads >= 1 && o->sigma >= 0 && o->shape.way >= 0 &&
           o->shape.shot >= 0 && o->shape.query >= 0;
}

/* The generation a checkpoint was saved at (its "progress" section). */
static esm_status ckpt_generation(const char *path, int64_t *gen, esm_err *err)
{
    esm_ckpt ck;
    esm_status st = esm_ckpt_read(path, &ck, err);
    if (st != ESM_OK)
        return st;
    const void *prog;
    st = esm_ckpt_get(&ck, "progress", 8, &prog, NULL, err);
    if (st == ESM_OK) {
        esm_reader r = {.buf = prog, .len = 8, .ok = 1};
        *gen = (int64_t)esm_get_u64(&r);
    }
    esm_ckpt_free(&ck);
    return st;
}

/* The network to measure and the defaults it brings (shape, sigma). */
static esm_status load_model(bench *b, esm_err *err)
{
    opts *o = &b->o;
    esm_episode_shape def = {20, 5, 5};
    float sigma = 0.02f;
    esm_status st;
    if (o->ckpt) {
        st = esm_model_load(o->ckpt, &b->model, err);
        if (st == ESM_OK && !o->at_init)
            st = ckpt_generation(o->ckpt, &b->generation, err);
        if (st != ESM_OK)
            return st;
        if (o->at_init) /* what esm_trainer_create starts the run from */
            esm_net_init_params(&b->model.net, b->model.cfg.seed, b->model.params, NULL);
        def = b->model.cfg.shape;
        if (b->model.cfg.trainer == ESM_TRAINER_ES)
            sigma = b->model.cfg.sigma;
    } else {
        esm_net_config nc = {b->ds->channels, b->ds->height, b->ds->width, o->width, o->depth};
        esm_model *m = &b->model;
        st = esm_net_init(&m->net, &nc, err);
        if (st != ESM_OK)
            return st;
        m->params = malloc(m->net.n_params * sizeof(float));
        if (!m->params)
            return esm_fail(err, ESM_ENOMEM, "out of memory for %zu parameters", m->net.n_params);
        esm_net_init_params(&m->net, o->init_seed, m->params, NULL);
    }
    o->shape.way = o->shape.way ? o->shape.way : def.way;
    o->shape.shot = o->shape.shot ? o->shape.shot : def.shot;
    o->shape.query = o->shape.query ? o->shape.query : def.query;
    o->sigma = o->sigma > 0 ? o->sigma : sigma;
    return ESM_OK;
}

static esm_status setup(bench *b, esm_err *err)
{
    esm_status st = esm_dataset_load(b->o.data, NULL, &b->ds, err);
    if (st == ESM_OK)
        st = esm_split_get(b->ds, b->o.split, &b->sp, err);
    if (st == ESM_OK)
        st = load_model(b, err);
    if (st == ESM_OK)
        st = esm_episode_check(&b->sp, b->o.shape, err);
    if (st == ESM_OK)
        st = esm_episode_init(&b->ep, b->ds, b->o.shape, err);
    const esm_net *net = &b->model.net;
    esm_episode_shape sh = b->o.shape;
    if (st == ESM_OK)
        st = esm_protonet_ws_create(net, sh.way, sh.shot, sh.way * sh.query, 1, &b->ws, err);
    if (st == ESM_OK)
        st = esm_protonet_ws_set_threads(b->ws, b->o.threads, err);
    for (int k = 0; k < b->o.n_pops; k++)
        b->pmax = b->o.pops[k] > b->pmax ? b->o.pops[k] : b->pmax;
    if (st == ESM_OK)
        st = esm_popeval_open("cpu", net, sh, b->pmax, 0, 0, &b->pe, err);
    size_t n = net->n_params, p = (size_t)b->pmax;
    if (st == ESM_OK) {
        b->g = malloc(n * sizeof(float)), b->gbar = malloc(n * sizeof(float)), b->ghat = malloc(n * sizeof(float));
        b->scale0 = calloc(n, sizeof(float));
        b->loss = malloc(p * sizeof(float)), b->acc = malloc(p * sizeof(float)), b->fit = malloc(p * sizeof(float));
        if (!b->g || !b->gbar || !b->ghat || !b->scale0 || !b->loss || !b->acc || !b->fit)
            st = esm_fail(err, ESM_ENOMEM, "out of memory for %zu parameters and %d members", n, b->pmax);
    }
    return st;
}

/* g = d loss / d theta on episode (seed, index), as a backprop training step computes it. */
static esm_status episode_grad(bench *b, uint64_t index, float *loss, esm_err *err)
{
    esm_episode_sample(&b->ep, b->ds, &b->sp, b->o.seed, index);
    esm_episode_shape sh = b->o.shape;
    float acc;
    return esm_protonet_loss_grad(&b->model.net, b->model.params, NULL, ESM_BN_BATCH, b->ws, b->ep.support, sh.way,
                                  sh.shot, b->ep.query, b->ep.query_label, sh.way * sh.query, loss, &acc, b->g, err);
}

/* gbar, and the relative size of its own noise: sqrt(tr Cov(g) / M) / |gbar|. */
static esm_status mean_gradient(bench *b, double *noise_rel, esm_err *err)
{
    size_t n = b->model.net.n_params;
    int m = b->o.mean_episodes;
    double *sum = calloc(n, sizeof *sum), sq = 0;
    if (!sum)
        return esm_fail(err, ESM_ENOMEM, "out of memory for the mean gradient");
    esm_status st = ESM_OK;
    for (int k = 0; k < m && st == ESM_OK; k++) {
        float loss;
        st = episode_grad(b, MEAN_EPISODE_BASE + (uint64_t)k, &loss, err);
        for (size_t j = 0; st == ESM_OK && j < n; j++)
            sum[j] += b->g[j], sq += (double)b->g[j] * b->g[j];
    }
    double gg = 0;
    for (size_t j = 0; j < n; j++)
        b->gbar[j] = (float)(sum[j] / m), gg += (sum[j] / m) * (sum[j] / m);
    double tr = (sq - m * gg) / (m - 1);
    *noise_rel = gg > 0 && tr > 0 ? sqrt(tr / m / gg) : 0;
    free(sum);
    return st;
}

/* The member losses of episode e (already sampled), members 0..pmax-1 of the openai-es population
 * keyed by (seed, e), and the evaluator's loss of theta itself (sigma 0) into *loss0. */
static esm_status score_members(bench *b, uint64_t es_seed, float *loss0, esm_err *err)
{
    esm_es_config c;
    esm_status st = esm_es_config_init(&c, "openai-es", b->model.net.n_params, err);
    esm_es *es = NULL;
    c.popsize = b->pmax, c.seed = es_seed, c.sigma0 = b->o.sigma;
    if (st == ESM_OK)
        st = esm_es_create(&es, &c, b->model.params, err);
    float *scale = st == ESM_OK ? malloc(b->model.net.n_params * sizeof *scale) : NULL;
    if (st == ESM_OK && !scale)
        st = esm_fail(err, ESM_ENOMEM, "out of memory");
    esm_popeval_job job = {.eps = &b->ep, .n_eps = 1, .begin = 0, .count = b->pmax};
    if (st == ESM_OK) {
        esm_es_population_get(es, scale, &job.pop);
        st = esm_popeval_evaluate(&b->pe, &job, b->loss, b->acc, b->fit, err);
    }
    float a, f;
    job.pop.scale = b->scale0, job.count = 1;
    if (st == ESM_OK)
        st = esm_popeval_evaluate(&b->pe, &job, loss0, &a, &f, err);
    free(scale);
    esm_es_free(es);
    return st;
}

/* ghat (negated: a loss gradient) of the first p members, by estimator k (0 openai-es, 1 antithetic). */
static esm_status estimate(bench *b, uint64_t es_seed, int p, int k, esm_err *err)
{
    esm_es_config c;
    esm_status st = esm_es_config_init(&c, "openai-es", b->model.net.n_params, err);
    esm_es *es = NULL;
    c.popsize = p, c.seed = es_seed, c.sigma0 = b->o.sigma;
    if (b->model.cfg.trainer == ESM_TRAINER_ES)
        c.shaping = (esm_es_shaping)b->model.cfg.shaping; /* the run's own weights */
    if (st == ESM_OK)
        st = esm_es_create(&es, &c, b->model.params, err);
    if (st == ESM_OK)
        st = k == 0 ? esm_es_gradient_estimate(es, b->fit, b->ghat, err)
                    : esm_es_antithetic_gradient(es, b->fit, b->ghat, err);
    for (size_t j = 0; st == ESM_OK && j < b->model.net.n_params; j++)
        b->ghat[j] = -b->ghat[j];
    esm_es_free(es);
    return st;
}

static const char *const estimators[2] = {"openai-es", "antithetic"};

/* cos(x, gbar) rescaled to estimate cos(x, G), G the expected gradient: x . gbar is unbiased for
 * x . G (gbar's episodes are independent of x), and |G|^2 = |gbar|^2 - tr Cov / M = |gbar|^2 (1 -
 * noise_rel^2). Null when gbar is mostly noise (noise_rel >= 0.9): raise --mean-episodes. */
static void print_corrected(const char *name, const stat *s, double noise_rel)
{
    if (noise_rel >= 0.9) {
        printf(",\"%s\":null", name);
        return;
    }
    double f = 1 / sqrt(1 - noise_rel * noise_rel);
    printf(",\"%s\":{\"mean\":%.5f,\"sd\":%.5f}", name, stat_mean(s) * f, stat_sd(s) * f);
}

static void print_rows(const bench *b, row rows[][2])
{
    size_t n = b->model.net.n_params;
    for (int i = 0; i < b->o.n_pops; i++)
        for (int k = 0; k < 2; k++) {
            const row *r = &rows[i][k];
            int p = b->o.pops[i];
            printf("{\"what\":\"estimate\",\"generation\":%lld,\"pop\":%d,\"estimator\":\"%s\",\"episodes\":%d,",
                   (long long)b->generation, p, estimators[k], r->cos_own.n);
            stat_print("cos_own", &r->cos_own), putchar(',');
            stat_print("cos_mean", &r->cos_mean), putchar(',');
            stat_print("norm_ratio", &r->norm_ratio);
            print_corrected("cos_expected", &r->cos_mean, b->noise_rel);
            if (k == 1) {
                double c = stat_mean(&r->cos_own), kk = p / 2.0;
                putchar(','), stat_print("proj_own", &r->proj);
                printf(",\"cos_quadratic\":%.5f", sqrt(kk / (kk + n + 1)));
                if (c > 0)
                    printf(",\"d_eff\":%.1f", kk * (1 / (c * c) - 1));
                else
                    printf(",\"d_eff\":null"); /* no signal: no dimension explains it */
            }
            printf("}\n");
        }
}

static int run(bench *b)
{
    esm_err err = {0};
    opts *o = &b->o;
    double t0 = now_s();
    if (setup(b, &err) != ESM_OK || mean_gradient(b, &b->noise_rel, &err) != ESM_OK)
        return fail(&err);
    size_t n = b->model.net.n_params;
    unsigned long long init_seed = o->have_init ? o->init_seed : o->at_init ? b->model.cfg.seed : 0;
    printf("{\"what\":\"setup\",\"checkpoint\":\"%s\",\"at_init\":%s,\"init_seed\":%llu,\"generation\":%lld,"
           "\"n_params\":%zu,\"width\":%d,\"depth\":%d,\"split\":\"%s\",\"way\":%d,\"shot\":%d,\"query\":%d,"
           "\"sigma\":%g,\"episodes\":%d,\"mean_episodes\":%d,\"seed\":%llu,\"threads\":%d}\n",
           o->ckpt ? o->ckpt : "", o->at_init ? "true" : "false", init_seed, (long long)b->generation, n,
           b->model.net.cfg.width, b->model.net.cfg.depth, o->split, o->shape.way, o->shape.shot, o->shape.query,
           (double)o->sigma, o->episodes, o->mean_episodes, (unsigned long long)o->seed, o->threads);
    fflush(stdout);
    row(*rows)[2] = calloc((size_t)o->n_pops, sizeof *rows);
    stat cos_bp = {0}, loss_bp = {0}, gnorm = {0};
    double gbar_norm = esm_norm(b->gbar, n), worst = 0;
    if (!rows)
        return fprintf(stderr, "bench_es_cosine: out of memory\n"), 1;
    esm_status st = ESM_OK;
    for (int e = 0; e < o->episodes && st == ESM_OK; e++) {
        uint64_t es_seed = o->seed * 1000003ull + (uint64_t)e;
        float loss, loss0;
        st = episode_grad(b, (uint64_t)e, &loss, &err);
        if (st == ESM_OK)
            st = score_members(b, es_seed, &loss0, &err);
        if (st != ESM_OK)
            break;
        double gn = esm_norm(b->g, n);
        worst = fmax(worst, fabs((double)loss0 - loss));
        stat_add(&cos_bp, esm_cosine(b->g, b->gbar, n)), stat_add(&loss_bp, loss), stat_add(&gnorm, gn);
        for (int i = 0; i < o->n_pops && st == ESM_OK; i++)
            for (int k = 0; k < 2 && st == ESM_OK; k++) {
                if ((st = estimate(b, es_seed, o->pops[i], k, &err)) != ESM_OK)
                    break;
                row *r = &rows[i][k];
                stat_add(&r->cos_own, esm_cosine(b->ghat, b->g, n));
                stat_add(&r->cos_mean, esm_cosine(b->ghat, b->gbar, n));
                double ratio = esm_norm(b->ghat, n) / gn;
                stat_add(&r->norm_ratio, ratio);
                stat_add(&r->proj, ratio * esm_cosine(b->ghat, b->g, n));
            }
        fprintf(stderr, "episode %d/%d: loss %.4f, %.0f s\n", e + 1, o->episodes, loss, now_s() - t0);
    }
    if (st != ESM_OK) {
        free(rows);
        return fail(&err);
    }
    printf("{\"what\":\"backprop\",\"generation\":%lld,\"episodes\":%d,", (long long)b->generation, cos_bp.n);
    stat_print("cos_episode_mean", &cos_bp), putchar(',');
    stat_print("loss", &loss_bp), putchar(',');
    stat_print("g_norm", &gnorm);
    print_corrected("cos_episode_expected", &cos_bp, b->noise_rel);
    printf(",\"gbar_norm\":%.6g,\"gbar_noise_rel\":%.4f,\"loss_sigma0_max_abs_diff\":%.3g}\n", gbar_norm,
           b->noise_rel, worst);
    print_rows(b, rows);
    printf("{\"what\":\"done\",\"generation\":%lld,\"elapsed_s\":%.1f,\"ok\":true}\n", (long long)b->generation,
           now_s() - t0);
    free(rows);
    return 0;
}

static void teardown(bench *b)
{
    esm_popeval_close(&b->pe);
    esm_protonet_ws_free(b->ws);
    esm_episode_free(&b->ep);
    esm_model_free(&b->model);
    free(b->g), free(b->gbar), free(b->ghat), free(b->scale0), free(b->loss), free(b->acc), free(b->fit);
    esm_split_free(&b->sp);
    esm_dataset_free(b->ds);
}

int main(int argc, char **argv)
{
    esm_blas_single_thread(); /* esmeta's threads only, as the CLI runs */
    bench b = {0};
    if (!parse(argc, argv, &b.o))
        return usage();
    omp_set_num_threads(b.o.threads);
    int rc = run(&b);
    teardown(&b);
    return rc;
}
