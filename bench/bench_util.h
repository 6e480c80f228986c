/* Helpers every benchmark program shares: a monotonic clock, a comparator for medians, and the
 * FLOP count of the convolutions (the work that dominates the network). */
#ifndef ESM_BENCH_UTIL_H
#define ESM_BENCH_UTIL_H

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

/* Times `steps` trainer steps after one warm-up step (workspaces, page faults). Fills dt
 * (sorted ascending, so dt[steps/2] is the median) and the last step's stats; returns 1 on
 * success, 0 with err filled on failure. */
static inline int bench_time_steps(esm_trainer *t, int steps, double *dt, esm_train_stats *s, esm_err *err)
{
    if (esm_trainer_step(t, s, err) != ESM_OK)
        return 0;
    for (int g = 0; g < steps; g++) {
        double t0 = now_s();
        if (esm_trainer_step(t, s, err) != ESM_OK)
            return 0;
        dt[g] = now_s() - t0;
    }
    qsort(dt, (size_t)steps, sizeof *dt, cmp_d);
    return 1;
}

#endif
