/* The workspace of a net (private to src/model). */
#ifndef ESM_MODEL_WS_H
#define ESM_MODEL_WS_H

#include "esmeta/model.h"

struct esm_net_ws {
    esm_net_config cfg; /* of the net it was sized for */
    int max_n, with_backward, depth;
    /* What the last forward left, for backward. */
    int last_n, last_batch_stats;
    /* in[b]: block b's input (n, cin, h, w). in[0] is a copy of x only with_backward;
     * without it all in[b > 0] share one buffer. */
    float *in[ESM_NET_MAX_DEPTH];
    /* z[b]: conv output (n, cout, h, w); shared without backward. */
    float *z[ESM_NET_MAX_DEPTH];
    float *mean, *var;    /* (depth, width) batch statistics of the last forward */
    float *scale, *shift; /* (depth, width) batch norm folded into y = scale*z + shift */
    double *moments;      /* (width, 3) streamed batch statistics */
    float *conv_scratch;  /* esm_conv3x3_scratch of the largest block */
    float *g_big, *g_small; /* backward: d of conv output, d of block input */
    void *mem;
};

/* 1 if the two configurations describe the same net. */
int esm_net_config_same(const esm_net_config *a, const esm_net_config *b);
/* Block k's conv (no bias) of inp (n images) into z, in cache-sized runs of images; when moments
 * is not NULL each run's moments are added to it (esm_batchnorm_moments_add) while still in cache. */
void esm_conv_and_moments(const esm_block *k, const float *wgt, const float *inp, int n, double *moments,
                          esm_net_ws *ws, float *z);

#endif
