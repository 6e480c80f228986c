/* Helpers every benchmark program shares: a monotonic clock, a comparator for medians, one timing
 * loop (warm-up, timed repetitions, sorted), the process's peak resident memory, and the FLOP count
 * of the convolutions (the work that dominates the network). */
#ifndef ESM_BENCH_UTIL_H
#define ESM_BENCH_UTIL_H

#include <sys/resource.h>
#include <time.h>

#include <stdlib.h>

#include "esmeta/model.h"
#include "esmeta/train.h"

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Multiply-adds of the 3x3 convolutions for one image's forward pass, doubled to FLOPs. */
static inline double conv_flops_per_image(const esm_net *net)
{
    double f = 0;
    for (int b = 0; b < net->cfg.depth; b++) {
        const esm_block *k = &net->block[b];
        f += 2.0 * k->cout * k->cin * 9 * k->h * k->w;
    }
    return f;
}

/* Peak resident set of this process so far, in MiB (ru_maxrss is in KiB on Linux); -1 if unknown.
 * It only grows, so a program that runs one measurement per process (as bench/report.sh does)
 * reports that measurement's own peak when it samples this right after the timed runs. */
static inline double bench_peak_rss_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : -1;
}

/* Runs fn(ctx) once to warm up (workspaces, page faults, caches), then `reps` timed times. Fills dt
 * (sorted ascending, so dt[reps/2] is the median); returns 1 on success, 0 as soon as fn returns
 * non-zero. */
static inline int bench_time(int (*fn)(void *ctx), void *ctx, int reps, double *dt)
{
    if (fn(ctx))
        return 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        if (fn(ctx))
            return 0;
        dt[r] = now_s() - t0;
    }
    qsort(dt, (size_t)reps, sizeof *dt, cmp_d);
    return 1;
}

typedef struct {
    esm_trainer *t;
    esm_train_stats *s;
    esm_err *err;
} bench_step_ctx;

static inline int bench_step_once(void *ctx)
{
    bench_step_ctx *c = ctx;
    return esm_trainer_step(c->t, c->s, c->err) != ESM_OK;
}

/* Times `steps` trainer steps after one warm-up step (bench_time). Fills dt (sorted ascending) and
 * the last step's stats; returns 1 on success, 0 with err filled on failure. */
static inline int bench_time_steps(esm_trainer *t, int steps, double *dt, esm_train_stats *s, esm_err *err)
{
    bench_step_ctx c = {t, s, err};
    return bench_time(bench_step_once, &c, steps, dt);
}

#endif
