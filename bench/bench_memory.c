/* Peak resident memory against episode size: one ES fitness evaluation with streamed episodes
 * next to one backprop step, for the default conv-4 ProtoNet (Sheng & He 2020 claim ES needs up
 * to 40x less memory than autodiff and that its memory does not grow with the task).
 *
 * Each point runs in a fresh process (this binary re-executed with --child), and its peak is
 * that child's own ru_maxrss from wait4, so points cannot contaminate each other. Episodes are
 * synthetic: 5-way, k images per class split evenly into shot and query (Omniglot has only 20
 * drawings per class); the pixels are a cheap deterministic pattern, generated on demand by the
 * ES child (chunk by chunk) and held whole by the backprop child, as each would hold real data.
 *   ES child:       an esm_es object (openai-es defaults: centre and Adam state), one member's
 *                   parameters, a streamed workspace of CHUNK images, one esm_protonet_loss_stream.
 *   ES whole child: the same without streaming (--chunk 0, what the trainer did before): the
 *                   episode held whole and a forward-only workspace for all of it.
 *   backprop child: params, Adam state, gradient, the episode, a with-backward workspace, one
 *                   esm_protonet_loss_grad and one Adam step.
 * All single-threaded. usage: build/bench_memory [--chunk N] [--width C] [--depth B] [--no-whole]
 * [PER_CLASS ...] (default chunk 50, width 64, depth 4, per class 10 100 400 2000 -> 50 .. 10,000
 * images; --no-whole skips the ES-without-streaming column, reported as 0).
 * Prints one JSON line per size. */
#define _GNU_SOURCE
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "esmeta.h"

#define WAY 5

typedef struct {
    int chunk, per_class;
    esm_net_config cfg;
} point;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Row r of the episode (support rows first, class-major, then queries, class-major). */
typedef struct {
    int n_support, shot, query, img;
} synth;

static void synth_rows(void *ctx, int first, int count, float *x, int *label)
{
    const synth *s = ctx;
    for (int i = 0; i < count; i++) {
        int r = first + i;
        int cls = r < s->n_support ? r / s->shot : (r - s->n_support) / s->query;
        for (int k = 0; k < s->img; k++)
            x[(size_t)i * s->img + k] = (float)((k * 7 + cls * 131 + r * 3) % 29) / 29.0f;
        label[i] = cls;
    }
}

static int die(const esm_err *err)
{
    fprintf(stderr, "bench_memory: %s\n", err->msg);
    return 1;
}

static int child_es(const point *p, const esm_net *net)
{
    esm_err err = {0};
    int shot = p->per_class / 2, query = p->per_class - shot;
    float *centre = malloc(net->n_params * sizeof(float)), *theta = malloc(net->n_params * sizeof(float));
    esm_es_config ec;
    esm_es *es = NULL;
    esm_protonet_stream *ws = NULL;
    if (!centre || !theta)
        return 1;
    esm_net_init_params(net, 1, centre, NULL);
    if (esm_es_config_init(&ec, "openai-es", net->n_params, &err) != ESM_OK ||
        esm_es_create(&es, &ec, centre, &err) != ESM_OK ||
        esm_protonet_stream_create(net, WAY, p->chunk > 0 ? p->chunk : WAY * p->per_class, &ws, &err) != ESM_OK)
        return die(&err);
    esm_es_member(es, 0, theta);
    synth sy = {WAY * shot, shot, query, net->in_size};
    esm_episode_stream s = {WAY, shot, WAY * query, synth_rows, &sy};
    float loss, acc;
    if (esm_protonet_loss_stream(net, theta, NULL, ESM_BN_BATCH, ws, &s, &loss, &acc, &err) != ESM_OK)
        return die(&err);
    if (!(loss == loss))
        fprintf(stderr, "bench_memory: ES loss is NaN\n");
    esm_protonet_stream_free(ws);
    esm_es_free(es);
    free(centre), free(theta);
    return 0;
}

static int child_backprop(const point *p, const esm_net *net)
{
    esm_err err = {0};
    int shot = p->per_class / 2, query = p->per_class - shot, n = WAY * p->per_class;
    float *params = malloc(net->n_params * sizeof(float)), *grad = malloc(net->n_params * sizeof(float));
    float *x = malloc((size_t)n * net->in_size * sizeof(float));
    int *label = malloc((size_t)n * sizeof(int));
    esm_adam adam;
    esm_adam_config ac = esm_adam_config_default(1e-3f);
    esm_protonet_ws *ws = NULL;
    if (!params || !grad || !x || !label)
        return 1;
    esm_net_init_params(net, 1, params, NULL);
    synth sy = {WAY * shot, shot, query, net->in_size};
    synth_rows(&sy, 0, n, x, label);
    if (esm_adam_init(&adam, net->n_params, &ac, &err) != ESM_OK ||
        esm_protonet_ws_create(net, WAY, shot, WAY * query, 1, &ws, &err) != ESM_OK)
        return die(&err);
    float loss, acc;
    const float *q = x + (size_t)WAY * shot * net->in_size;
    if (esm_protonet_loss_grad(net, params, NULL, ESM_BN_BATCH, ws, x, WAY, shot, q, label + WAY * shot, WAY * query,
                               &loss, &acc, grad, &err) != ESM_OK)
        return die(&err);
    esm_adam_step(&adam, params, grad);
    if (!(loss == loss))
        fprintf(stderr, "bench_memory: backprop loss is NaN\n");
    esm_protonet_ws_free(ws);
    esm_adam_free(&adam);
    free(params), free(grad), free(x), free(label);
    return 0;
}

/* Runs one point in a fresh process; returns its peak RSS in MiB (-1 on failure) and wall time. */
static double run_child(const char *self, const char *kind, const point *p, double *secs)
{
    char chunk[16], pc[16], w[16], d[16];
    snprintf(chunk, sizeof chunk, "%d", p->chunk), snprintf(pc, sizeof pc, "%d", p->per_class);
    snprintf(w, sizeof w, "%d", p->cfg.width), snprintf(d, sizeof d, "%d", p->cfg.depth);
    double t0 = now_s();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "--child", kind, chunk, pc, w, d, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    *secs = now_s() - t0;
    return ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static int child_main(char **argv)
{
    point p = {atoi(argv[3]), atoi(argv[4]), esm_net_config_default()};
    p.cfg.width = atoi(argv[5]), p.cfg.depth = atoi(argv[6]);
    esm_net net;
    esm_err err = {0};
    if (esm_net_init(&net, &p.cfg, &err) != ESM_OK)
        return die(&err);
    return !strcmp(argv[2], "es") ? child_es(&p, &net) : child_backprop(&p, &net);
}

int main(int argc, char **argv)
{
    esm_blas_single_thread(); /* esmeta's threads only, as the CLI runs */
    if (argc == 7 && !strcmp(argv[1], "--child"))
        return child_main(argv);
    point p = {50, 0, esm_net_config_default()};
    int sizes[32], n_sizes = 0, whole = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--chunk"))
            p.chunk = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--width"))
            p.cfg.width = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-whole"))
            whole = 0;
        else if (i + 1 < argc && !strcmp(argv[i], "--depth"))
            p.cfg.depth = atoi(argv[++i]);
        else if (atoi(argv[i]) >= 2 && n_sizes < 32)
            sizes[n_sizes++] = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: bench_memory [--chunk N] [--width C] [--depth B] [--no-whole] [PER_CLASS ...] "
                            "(each >= 2)\n");
            return 2;
        }
    }
    if (!n_sizes) {
        int def[4] = {10, 100, 400, 2000};
        memcpy(sizes, def, sizeof def);
        n_sizes = 4;
    }
    /* the children run single-threaded: one member per thread is how ES scores members */
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    for (int i = 0; i < n_sizes; i++) {
        p.per_class = sizes[i];
        double es_s = 0, bp_s = 0, wh_s = 0, wh = 0;
        double es = run_child("/proc/self/exe", "es", &p, &es_s);
        point pw = p;
        pw.chunk = 0; /* the whole episode as one chunk: the ordinary single forward */
        if (whole)
            wh = run_child("/proc/self/exe", "es", &pw, &wh_s);
        double bp = run_child("/proc/self/exe", "backprop", &p, &bp_s);
        if (es < 0 || bp < 0 || wh < 0) {
            fprintf(stderr, "bench_memory: the child for %d images per class failed\n", p.per_class);
            return 1;
        }
        printf("{\"images\":%d,\"way\":%d,\"shot\":%d,\"query\":%d,\"chunk\":%d,\"width\":%d,\"depth\":%d,"
               "\"es_peak_mib\":%.1f,\"backprop_peak_mib\":%.1f,\"ratio\":%.1f,\"es_whole_peak_mib\":%.1f,"
               "\"es_s\":%.2f,\"backprop_s\":%.2f,\"es_whole_s\":%.2f}\n",
               WAY * p.per_class, WAY, p.per_class / 2, p.per_class - p.per_class / 2, p.chunk, p.cfg.width,
               p.cfg.depth, es, bp, bp / es, wh, es_s, bp_s, wh_s);
        fflush(stdout);
    }
    return 0;
}
