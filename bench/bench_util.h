/* Helpers every benchmark program shares: a monotonic clock, a comparator for medians, and the
 * FLOP count of the convolutions (the work that dominates the network). */
#ifndef ESM_BENCH_UTIL_H
#define ESM_BENCH_UTIL_H

#include <time.h>

#include "esmeta/model.h"

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

#endif
