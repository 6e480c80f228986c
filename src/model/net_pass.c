/* Whole-net forward and backward: the block layers chained over the workspace. */
#include "ws.h"

#include <math.h>
#include <string.h>

int esm_net_config_same(const esm_net_config *a, const esm_net_config *b)
{
    return a->in_channels == b->in_channels && a->in_height == b->in_height && a->in_width == b->in_width &&
           a->width == b->width && a->depth == b->depth;
}

static esm_status check_forward(const esm_net *net, const float *bn_running, const esm_net_ws *ws, int n,
                                esm_bn_mode mode, esm_err *err)
{
    if (!esm_net_config_same(&ws->cfg, &net->cfg))
        return esm_fail(err, ESM_EMISMATCH, "net forward: the workspace was made for another net configuration; "
                                            "create one with this net");
    if (n <= 0 || n > ws->max_n)
        return esm_fail(err, ESM_EINVAL, "net forward: batch %d outside 1..%d (the workspace's max batch)", n,
                        ws->max_n);
    if (mode == ESM_BN_EVAL && !bn_running)
        return esm_fail(err, ESM_EINVAL, "net forward: eval mode needs the running-statistics buffer (got NULL)");
    return ESM_OK;
}

/* Conv output is written in chunks small enough (~256 KiB) to still be in cache when the
 * batch statistics read them, which saves a pass over memory (block 1's output is ~120 MB
 * for 600 images). */
#define CHUNK_FLOATS (1 << 16)

void esm_conv_and_moments(const esm_block *k, const float *wgt, const float *inp, int n, double *moments,
                          esm_net_ws *ws, float *z)
{
    size_t hw = (size_t)k->h * k->w, per_img = (size_t)k->cout * hw;
    int chunk = per_img >= CHUNK_FLOATS ? 1 : (int)(CHUNK_FLOATS / per_img);
    for (int i0 = 0; i0 < n; i0 += chunk) {
        int m = n - i0 < chunk ? n - i0 : chunk;
        float *zc = z + (size_t)i0 * per_img;
        esm_conv3x3_forward(inp + (size_t)i0 * k->cin * hw, wgt, NULL, m, k->cin, k->cout, k->h, k->w,
                            ws->conv_scratch, zc);
        if (moments)
            esm_batchnorm_moments_add(zc, m, k->cout, (int)hw, moments);
    }
}

esm_status esm_net_forward(const esm_net *net, const float *params, float *bn_running, esm_net_ws *ws,
                           const float *x, int n, esm_bn_mode mode, float *emb, esm_err *err)
{
    ws->last_n = 0;
    esm_status st = check_forward(net, bn_running, ws, n, mode, err);
    if (st != ESM_OK)
        return st;
    int depth = net->cfg.depth, width = net->cfg.width;
    const float *a = x;
    if (ws->with_backward) {
        memcpy(ws->in[0], x, (size_t)n * net->in_size * sizeof *x);
        a = ws->in[0];
    }
    for (int b = 0; b < depth; b++) {
        const esm_block *k = &net->block[b];
        int hw = k->h * k->w;
        size_t sb = (size_t)b * width;
        float *z = ws->z[b], *scale = ws->scale + sb, *shift = ws->shift + sb;
        const float *gamma = params + k->gamma_off, *beta = params + k->beta_off;
        /* z is (n, cout, h, w), the conv output less its bias: batch norm subtracts the mean
         * anyway, so the bias only enters through the running mean. */
        for (int c = 0; c < 3 * k->cout; c++)
            ws->moments[c] = 0.0;
        esm_conv_and_moments(k, params + k->w_off, a, n, mode != ESM_BN_EVAL ? ws->moments : NULL, ws, z);
        const float *bias = params + k->b_off;
        float *mean = ws->mean + sb, *var = ws->var + sb;
        if (mode == ESM_BN_EVAL) {
            /* normalising z + bias by the running mean is normalising z by (mean - bias) */
            const float *run_mean = bn_running + k->mean_off;
            for (int c = 0; c < k->cout; c++)
                mean[c] = run_mean[c] - bias[c];
            esm_batchnorm_fold(gamma, beta, mean, bn_running + k->var_off, k->cout, scale, shift);
        } else {
            esm_batchnorm_moments_get(ws->moments, k->cout, mean, var);
            if (mode == ESM_BN_TRAIN && bn_running)
                esm_batchnorm_update_running(bn_running + k->mean_off, bn_running + k->var_off, mean, bias, var,
                                             k->cout, (double)n * hw);
            esm_batchnorm_fold(gamma, beta, mean, var, k->cout, scale, shift);
        }
        /* out is (n, cout, ho, wo): the next block's input, or the embedding */
        float *out = b == depth - 1 ? emb : ws->in[b + 1];
        esm_affine_relu_pool_forward(z, scale, shift, n, k->cout, k->h, k->w, out);
        a = out;
    }
    ws->last_n = n;
    ws->last_batch_stats = mode != ESM_BN_EVAL;
    return ESM_OK;
}

esm_status esm_net_backward(const esm_net *net, const float *params, esm_net_ws *ws, const float *d_emb,
                            float *grad, esm_err *err)
{
    if (!ws->with_backward)
        return esm_fail(err, ESM_EINVAL, "net backward: the workspace was made without backward; create it with "
                                         "with_backward = 1");
    if (ws->last_n <= 0 || !ws->last_batch_stats)
        return esm_fail(err, ESM_EINVAL, "net backward: needs a preceding successful forward in a batch-statistics "
                                         "mode (ESM_BN_TRAIN or ESM_BN_BATCH) on this workspace");
    if (!esm_net_config_same(&ws->cfg, &net->cfg))
        return esm_fail(err, ESM_EMISMATCH, "net backward: the workspace was made for another net configuration; "
                                            "create one with this net");
    int n = ws->last_n, width = net->cfg.width;
    const float *d_pool = d_emb;
    for (int b = net->cfg.depth - 1; b >= 0; b--) {
        const esm_block *k = &net->block[b];
        size_t sb = (size_t)b * width;
        /* g_big is (n, cout, h, w): d of the bn output, then (in place) of the conv output */
        esm_affine_relu_pool_backward(ws->z[b], ws->scale + sb, ws->shift + sb, d_pool, n, k->cout, k->h, k->w,
                                      ws->g_big);
        esm_batchnorm_backward(ws->z[b], ws->mean + sb, ws->var + sb, params + k->gamma_off, n, k->cout,
                               k->h * k->w, ws->g_big, grad + k->gamma_off, grad + k->beta_off);
        /* g_small is (n, cin, h, w): d of this block's input, the previous block's pool output */
        esm_conv3x3_backward(ws->in[b], params + k->w_off, ws->g_big, n, k->cin, k->cout, k->h, k->w,
                             ws->conv_scratch, b > 0 ? ws->g_small : NULL, grad + k->w_off, grad + k->b_off);
        d_pool = ws->g_small;
    }
    return ESM_OK;
}
