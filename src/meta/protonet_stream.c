/* The streamed episode loss (esm_protonet_loss_stream): exact batch statistics over an episode
 * fed `chunk` images at a time, with prototypes and query losses accumulated on the way, so
 * memory is O(chunk + way*dim) whatever the episode's size. See protonet.h for the passes. */
#include "esmeta/protonet.h"
#include "meta/head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct esm_protonet_stream {
    int max_way, chunk;
    esm_net_ws *net_ws;  /* for `chunk` images, forward only */
    float *x;            /* (chunk, C, H, W) the rows of the current chunk */
    int *label;          /* (chunk) their classes */
    float *emb;          /* (chunk, dim) */
    float *fold;         /* (depth, 2, width) batch norm folded per block, filled pass by pass */
    float *mean, *var;   /* (width) one block's statistics */
    double *acc;         /* (3*width) the block being measured: streamed moments */
    float *head;         /* head scratch: prototypes, then per-query probabilities */
};

static void arrays_rows(void *ctx, int first, int count, float *x, int *label)
{
    const esm_episode_arrays *a = ctx;
    size_t img = (size_t)a->image_size;
    for (int i = 0; i < count; i++) {
        int r = first + i, q = r - a->n_support;
        const float *src = q < 0 ? a->support + (size_t)r * img : a->query + (size_t)q * img;
        memcpy(x + (size_t)i * img, src, img * sizeof *x);
        label[i] = q < 0 ? -1 : a->labels[q]; /* support classes come from the row (class-major) */
    }
}

esm_episode_stream esm_episode_stream_arrays(esm_episode_arrays *ctx, const float *support, int way, int shot,
                                             const float *query, const int *labels, int n_query, int image_size)
{
    *ctx = (esm_episode_arrays){support, query, labels, way * shot, image_size};
    return (esm_episode_stream){way, shot, n_query, arrays_rows, ctx};
}

size_t esm_protonet_stream_bytes(const esm_net *net, int max_way, int chunk)
{
    size_t c = (size_t)chunk, width = (size_t)net->cfg.width;
    size_t floats = c * net->in_size + c * net->emb_dim + 2 * (size_t)net->cfg.depth * width + 2 * width +
                    esm_protonet_head_scratch(max_way, chunk, net->emb_dim);
    return esm_net_ws_bytes(net, chunk, 0) + sizeof(esm_protonet_stream) + floats * sizeof(float) +
           c * sizeof(int) + 3 * width * sizeof(double);
}

esm_status esm_protonet_stream_create(const esm_net *net, int max_way, int chunk, esm_protonet_stream **out,
                                      esm_err *err)
{
    *out = NULL;
    if (max_way < 1 || chunk < 1)
        return esm_fail(err, ESM_EINVAL, "protonet stream: way %d and chunk %d must be positive", max_way, chunk);
    esm_protonet_stream *ws = calloc(1, sizeof *ws);
    if (!ws)
        return esm_fail(err, ESM_ENOMEM, "protonet stream: out of memory");
    ws->max_way = max_way, ws->chunk = chunk;
    esm_status st = esm_net_ws_create(net, chunk, 0, &ws->net_ws, err);
    if (st != ESM_OK) {
        free(ws);
        return st;
    }
    size_t c = (size_t)chunk, width = (size_t)net->cfg.width;
    ws->x = malloc(c * net->in_size * sizeof(float));
    ws->label = malloc(c * sizeof(int));
    ws->emb = malloc(c * net->emb_dim * sizeof(float));
    ws->fold = malloc(2 * (size_t)net->cfg.depth * width * sizeof(float));
    ws->mean = malloc(width * sizeof(float));
    ws->var = malloc(width * sizeof(float));
    ws->acc = malloc(3 * width * sizeof(double));
    ws->head = malloc(esm_protonet_head_scratch(max_way, chunk, net->emb_dim) * sizeof(float));
    if (!ws->x || !ws->label || !ws->emb || !ws->fold || !ws->mean || !ws->var || !ws->acc || !ws->head) {
        esm_protonet_stream_free(ws);
        return esm_fail(err, ESM_ENOMEM, "protonet stream: out of memory for a chunk of %d images", chunk);
    }
    *out = ws;
    return ESM_OK;
}

void esm_protonet_stream_free(esm_protonet_stream *ws)
{
    if (!ws)
        return;
    esm_net_ws_free(ws->net_ws);
    free(ws->x), free(ws->label), free(ws->emb), free(ws->fold);
    free(ws->mean), free(ws->var), free(ws->acc), free(ws->head);
    free(ws);
}

/* What the last pass adds up. */
typedef struct {
    double total; /* query cross-entropies, in query order */
    int hits;
} head_sums;

/* The last pass over rows first..first+m-1 (embedded in ws->emb): support rows add into their
 * class's prototype, which is divided by shot after the last support row (the same float
 * operations, in the same order, as esm_protonet_head); query rows add their loss. */
static esm_status head_rows(const esm_protonet_stream *ws, const esm_episode_stream *ep, int dim, int first, int m,
                            head_sums *h, esm_err *err)
{
    int ns = ep->way * ep->shot;
    float *proto = ws->head, *prob = proto + (size_t)2 * ep->way * dim;
    for (int i = 0; i < m; i++) {
        int r = first + i;
        const float *e = ws->emb + (size_t)i * dim;
        if (r < ns) {
            float *p = proto + (size_t)(r / ep->shot) * dim;
            for (int d = 0; d < dim; d++)
                p[d] += e[d];
            if (r == ns - 1)
                for (size_t d = 0; d < (size_t)ep->way * dim; d++)
                    proto[d] /= (float)ep->shot;
            continue;
        }
        int label = ws->label[i];
        if (label < 0 || label >= ep->way)
            return esm_fail(err, ESM_EINVAL, "protonet head: query %d has label %d outside 0..%d", r - ns, label,
                            ep->way - 1);
        int hit;
        h->total += esm_protonet_query_xent(e, proto, ep->way, dim, label, prob, &hit);
        h->hits += hit;
    }
    return ESM_OK;
}

/* One pass over the episode: blocks 0..blocks-1 with ws->fold, then block `blocks`'s moments
 * into ws->acc, or (blocks == depth) the head. */
static esm_status pass(const esm_net *net, const float *params, esm_protonet_stream *ws, const esm_episode_stream *ep,
                       int blocks, head_sums *h, esm_err *err)
{
    int n = ep->way * ep->shot + ep->n_query;
    esm_status st = ESM_OK;
    for (int i0 = 0; i0 < n && st == ESM_OK; i0 += ws->chunk) {
        int m = n - i0 < ws->chunk ? n - i0 : ws->chunk;
        ep->rows(ep->ctx, i0, m, ws->x, ws->label);
        st = esm_net_forward_chunk(net, params, ws->fold, blocks, ws->net_ws, ws->x, m, ws->acc, ws->emb, err);
        if (st == ESM_OK && blocks == net->cfg.depth)
            st = head_rows(ws, ep, net->emb_dim, i0, m, h, err);
    }
    return st;
}

/* Block b's batch norm into ws->fold: running statistics in eval mode, otherwise a pass that
 * measures the episode's (and, in train mode, moves the running ones). */
static esm_status fold_block(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                             esm_protonet_stream *ws, const esm_episode_stream *ep, int b, esm_err *err)
{
    const esm_block *k = &net->block[b];
    const float *bias = params + k->b_off, *var = ws->var;
    if (mode == ESM_BN_EVAL) {
        /* as esm_net_forward: normalising z + bias by the running mean is normalising z by (mean - bias) */
        for (int c = 0; c < k->cout; c++)
            ws->mean[c] = bn_running[k->mean_off + c] - bias[c];
        var = bn_running + k->var_off;
    } else {
        memset(ws->acc, 0, 3 * (size_t)k->cout * sizeof *ws->acc);
        esm_status st = pass(net, params, ws, ep, b, NULL, err);
        if (st != ESM_OK)
            return st;
        esm_batchnorm_moments_get(ws->acc, k->cout, ws->mean, ws->var);
        int n = ep->way * ep->shot + ep->n_query;
        if (mode == ESM_BN_TRAIN && bn_running)
            esm_batchnorm_update_running(bn_running + k->mean_off, bn_running + k->var_off, ws->mean, bias, ws->var,
                                         k->cout, (double)n * k->h * k->w);
    }
    float *scale = ws->fold + (size_t)2 * b * net->cfg.width;
    esm_batchnorm_fold(params + k->gamma_off, params + k->beta_off, ws->mean, var, k->cout, scale,
                       scale + net->cfg.width);
    return ESM_OK;
}

/* An episode that fits one chunk: one ordinary forward, exactly esm_protonet_loss. */
static esm_status single_pass(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                              esm_protonet_stream *ws, const esm_episode_stream *ep, float *loss, float *acc,
                              esm_err *err)
{
    int ns = ep->way * ep->shot, n = ns + ep->n_query, dim = net->emb_dim;
    ep->rows(ep->ctx, 0, n, ws->x, ws->label);
    esm_status st = esm_net_forward(net, params, bn_running, ws->net_ws, ws->x, n, mode, ws->emb, err);
    if (st != ESM_OK)
        return st;
    return esm_protonet_head(ws->emb, ws->emb + (size_t)ns * dim, ws->label + ns, ep->way, ep->shot, ep->n_query, dim,
                             ws->head, loss, acc, NULL, NULL, err);
}

esm_status esm_protonet_loss_stream(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                                    esm_protonet_stream *ws, const esm_episode_stream *ep, float *loss, float *acc,
                                    esm_err *err)
{
    if (ep->way < 1 || ep->way > ws->max_way || ep->shot < 1 || ep->n_query < 1 || !ep->rows)
        return esm_fail(err, ESM_EINVAL, "protonet stream: way %d must be in 1..%d, shot %d and queries %d positive, "
                        "and the row callback set", ep->way, ws->max_way, ep->shot, ep->n_query);
    if (mode == ESM_BN_EVAL && !bn_running)
        return esm_fail(err, ESM_EINVAL, "protonet stream: eval mode needs the running-statistics buffer (got NULL)");
    if ((int64_t)ep->way * ep->shot + ep->n_query <= ws->chunk)
        return single_pass(net, params, bn_running, mode, ws, ep, loss, acc, err);
    esm_status st = ESM_OK;
    for (int b = 0; b < net->cfg.depth && st == ESM_OK; b++)
        st = fold_block(net, params, bn_running, mode, ws, ep, b, err);
    head_sums h = {0.0, 0};
    memset(ws->head, 0, (size_t)ep->way * net->emb_dim * sizeof(float));
    if (st == ESM_OK)
        st = pass(net, params, ws, ep, net->cfg.depth, &h, err);
    if (st != ESM_OK)
        return st;
    if (loss)
        *loss = (float)(h.total / ep->n_query);
    if (acc)
        *acc = (float)h.hits / (float)ep->n_query;
    if (!isfinite(h.total))
        return esm_fail(err, ESM_ENONFINITE, "protonet head: the loss is not finite (embeddings hold NaN or inf?)");
    return ESM_OK;
}
