/* Whole-net forward and backward: the block layers chained over the workspace. */
#include "ws.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
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
 * for 600 images). Chunks are fixed by the shapes alone and each image's conv and segment sums
 * are its own, so threads change nothing but the speed; segments merge in image order. */
#define CHUNK_FLOATS (1 << 16)

static int chunk_images(const esm_block *k)
{
    size_t per_img = (size_t)k->cout * k->h * k->w;
    return per_img >= CHUNK_FLOATS ? 1 : (int)(CHUNK_FLOATS / per_img);
}

/* Block k's conv of images i0..i0+m-1 (a chunk) into zc, from inp or from the lowered cols. */
static void conv_chunk(const esm_block *k, const float *wgt, const float *inp, const float *cols, int i0, int m,
                       int variant, float *scratch, float *zc)
{
    size_t hw = (size_t)k->h * k->w;
    esm_conv3x3_direct(variant, cols ? NULL : inp + (size_t)i0 * k->cin * hw,
                       cols ? cols + ESM_CONV_SLACK + (size_t)i0 * esm_conv3x3_plane_floats(k->cin, k->h, k->w) : NULL,
                       wgt, NULL, m,
                       k->cin, k->cout, k->h, k->w, scratch, zc);
}

/* The chunks of block k's conv, in parallel; each chunk's output lands at its place in z, or, with
 * slots, in its thread's own slot of z (chunk images from thread t's chunk * images, so it stays in
 * cache: a thread's chunks start at or after that image, hence the slot lies inside the batch).
 * While a chunk is in cache its image segment sums go to seg (when not NULL) and, when out is not
 * NULL, its ReLU + pool with the fold (scale, shift) to out. */
static void conv_chunks(const esm_block *k, const float *wgt, const float *inp, const float *cols, int n, int slots,
                        const float *scale, const float *shift, esm_net_ws *ws, float *z, float *seg, float *out)
{
    size_t hw = (size_t)k->h * k->w, per_img = (size_t)k->cout * hw;
    size_t out_img = (size_t)k->cout * (k->h / 2) * (k->w / 2);
    int chunk = chunk_images(k), n_chunks = (n + chunk - 1) / chunk, variant = esm_conv3x3_direct_variant();
#pragma omp parallel for num_threads(ws->threads) schedule(static) if (ws->threads > 1 && n_chunks > 1)
    for (int q = 0; q < n_chunks; q++) {
        int i0 = q * chunk, m = n - i0 < chunk ? n - i0 : chunk, tid = omp_get_thread_num();
        float *zc = z + (size_t)(slots ? tid * chunk : i0) * per_img;
        conv_chunk(k, wgt, inp, cols, i0, m, variant, esm_ws_scratch(ws, tid), zc);
        if (seg)
            esm_batchnorm_segments(zc, m, k->cout, (int)hw, seg + (size_t)2 * i0 * k->cout);
        if (out)
            esm_affine_relu_pool_forward(zc, scale, shift, m, k->cout, k->h, k->w, out + (size_t)i0 * out_img);
    }
}

void esm_conv_and_moments(const esm_block *k, const float *wgt, const float *inp, const float *cols, int n,
                          double *moments, esm_net_ws *ws, float *z)
{
    conv_chunks(k, wgt, inp, cols, n, 0, NULL, NULL, ws, z, moments ? ws->seg : NULL, NULL);
    if (moments)
        esm_batchnorm_segments_merge(ws->seg, n, k->cout, k->h * k->w, moments);
}

/* Threads' shares of n images for the per-image passes (any split gives the same bits). */
static void share(int n, int t, int nt, int *lo, int *hi)
{
    *lo = (int)((long long)n * t / nt);
    *hi = (int)((long long)n * (t + 1) / nt);
}

static int team(const esm_net_ws *ws, int n)
{
    return ws->threads < n ? ws->threads : n;
}

/* Block 0's batch statistics come from its input's tap moments (tap_moments.c) when it has few
 * input channels: no conv pass over the batch just for them. */
static int tap_stats(const esm_net *net, int b)
{
    return b == 0 && net->block[0].cin <= ESM_TAP_MAX_CIN;
}

/* Where the images' tap moments start in a lowered batch of n (after the planes and their
 * slacks, at an even float so the doubles are aligned as the buffer is) */
static size_t lowered_moments_at(const esm_net *net, int n)
{
    const esm_block *k = &net->block[0];
    size_t planes = (size_t)n * esm_conv3x3_plane_floats(k->cin, k->h, k->w) + 2 * ESM_CONV_SLACK;
    return (planes + 1) & ~(size_t)1;
}

size_t esm_net_lowered_floats(const esm_net *net, int n)
{
    size_t mom = tap_stats(net, 0) ? 2 * (size_t)n * esm_tap_moments_doubles(net->block[0].cin) : 0;
    return lowered_moments_at(net, n) + mom;
}

/* Each image's padded planes at its place in the batch (the direct conv's input, conv_direct.c)
 * and, with tap statistics, its tap moments; the piece that starts the batch also zeroes the
 * slack before it, the one that ends it the slack after it. */
esm_status esm_net_lower_input(const esm_net *net, const float *x, int first, int count, int n, float *cols,
                               esm_err *err)
{
    const esm_block *k = &net->block[0];
    if (first < 0 || count < 0 || first + count > n)
        return esm_fail(err, ESM_EINVAL, "net lower input: images %d..%d outside the batch of %d", first,
                        first + count - 1, n);
    size_t img = (size_t)k->cin * k->h * k->w, pf = esm_conv3x3_plane_floats(k->cin, k->h, k->w);
    float *scratch = NULL;
    if (tap_stats(net, 0) && count > 0) {
        scratch = malloc(esm_tap_moments_scratch(k->cin, k->h, k->w) * sizeof *scratch);
        if (!scratch)
            return esm_fail(err, ESM_ENOMEM, "net lower input: out of memory for the tap moments' scratch");
    }
    if (first == 0)
        esm_conv3x3_planes_slack(cols);
    double *mom = (double *)(void *)(cols + lowered_moments_at(net, n));
    size_t d = esm_tap_moments_doubles(k->cin);
    for (int j = first; j < first + count; j++) {
        const float *xj = x + (size_t)(j - first) * img;
        esm_conv3x3_planes(xj, k->cin, k->h, k->w, cols + ESM_CONV_SLACK + (size_t)j * pf);
        if (scratch)
            esm_tap_moments_image(xj, k->cin, k->h, k->w, scratch, mom + (size_t)j * d);
    }
    if (first + count == n)
        esm_conv3x3_planes_slack(cols + ESM_CONV_SLACK + (size_t)n * pf);
    free(scratch);
    return ESM_OK;
}

/* Block 0's batch moments from its input's tap moments: each image's from the lowered input
 * when there is one, else made here, in parallel (an image's are its own). */
static void tap_moments(const esm_net *net, esm_net_ws *ws, const float *wgt, const float *x, const float *cols,
                        int n, double *moments)
{
    const esm_block *k = &net->block[0];
    size_t d = esm_tap_moments_doubles(k->cin), img = (size_t)k->cin * k->h * k->w;
    const double *mom = cols ? (const double *)(const void *)(cols + lowered_moments_at(net, n)) : ws->tap_mom;
    if (!cols) {
        int nt = team(ws, n);
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int lo, hi, tid = omp_get_thread_num();
            share(n, tid, omp_get_num_threads(), &lo, &hi);
            for (int i = lo; i < hi; i++)
                esm_tap_moments_image(x + i * img, k->cin, k->h, k->w, esm_ws_scratch(ws, tid), ws->tap_mom + i * d);
        }
    }
    esm_tap_moments_stats(mom, n, k->cin, k->h * k->w, wgt, k->cout, moments);
}

/* A forward-only block whose conv is cheap next to moving its output through memory (block 0: 9*cin
 * taps per output, and width full-size planes per image, megabytes per episode) is convolved chunk
 * by chunk with its ReLU + pool, so its output never leaves the cache. Its batch statistics, needed
 * first, come from the tap moments (block 0, tap_stats) or else from one more conv pass (a later
 * block of a net narrower than 4: the conv gives the same bits both times). */
static int recompute_conv(const esm_net_ws *ws, const esm_block *k)
{
    return !ws->with_backward && k->cin <= 3;
}

static void relu_pool_forward(const esm_net_ws *ws, const esm_block *k, const float *z, const float *scale,
                              const float *shift, int n, float *out)
{
    int nt = team(ws, n);
    size_t in_img = (size_t)k->cout * k->h * k->w, out_img = (size_t)k->cout * (k->h / 2) * (k->w / 2);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int lo, hi;
        share(n, t, nt, &lo, &hi);
        if (hi > lo)
            esm_affine_relu_pool_forward(z + lo * in_img, scale, shift, hi - lo, k->cout, k->h, k->w,
                                         out + lo * out_img);
    }
}

esm_status esm_net_forward(const esm_net *net, const float *params, float *bn_running, esm_net_ws *ws,
                           const float *x, int n, esm_bn_mode mode, float *emb, esm_err *err)
{
    return esm_net_forward_lowered(net, params, bn_running, ws, x, NULL, n, mode, emb, err);
}

esm_status esm_net_forward_lowered(const esm_net *net, const float *params, float *bn_running, esm_net_ws *ws,
                                   const float *x, const float *cols, int n, esm_bn_mode mode, float *emb,
                                   esm_err *err)
{
    ws->last_n = 0;
    esm_status st = check_forward(net, bn_running, ws, n, mode, err);
    if (st != ESM_OK)
        return st;
    if (!x && (!cols || ws->with_backward))
        return esm_fail(err, ESM_EINVAL, "net forward: no input images (x is NULL); x may be left out only with "
                                         "its lowered input and a forward-only workspace");
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
        const float *bcols = b == 0 ? cols : NULL;
        int again = recompute_conv(ws, k), stats = mode != ESM_BN_EVAL, taps = stats && tap_stats(net, b);
        if (taps)
            tap_moments(net, ws, params + k->w_off, a, bcols, n, ws->moments);
        if (stats && !taps && again) {
            conv_chunks(k, params + k->w_off, a, bcols, n, 1, NULL, NULL, ws, z, ws->seg, NULL);
            esm_batchnorm_segments_merge(ws->seg, n, k->cout, hw, ws->moments);
        } else if (!again) {
            esm_conv_and_moments(k, params + k->w_off, a, bcols, n, stats && !taps ? ws->moments : NULL, ws, z);
        }
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
        if (again)
            conv_chunks(k, params + k->w_off, a, bcols, n, 1, scale, shift, ws, z, NULL, out);
        else
            relu_pool_forward(ws, k, z, scale, shift, n, out);
        a = out;
    }
    ws->last_n = n;
    ws->last_batch_stats = mode != ESM_BN_EVAL;
    return ESM_OK;
}

/* Block k's batch-norm backward in place on g (n, cout, h, w): image sums in parallel, their
 * total per channel in image order, then the update in parallel. */
static void batchnorm_backward(esm_net_ws *ws, const esm_block *k, const float *z, const float *mean,
                               const float *var, const float *gamma, int n, float *g, float *d_gamma, float *d_beta)
{
    int nt = team(ws, n), hw = k->h * k->w, c = k->cout;
    size_t img = (size_t)c * hw;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int lo, hi;
        share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        esm_batchnorm_backward_sums(z + lo * img, mean, g + lo * img, hi - lo, c, hw, ws->seg + (size_t)2 * lo * c);
#pragma omp barrier
#pragma omp single
        esm_batchnorm_backward_coefs(ws->seg, n, var, gamma, c, hw, d_gamma, d_beta, ws->bn_coef);
        esm_batchnorm_backward_apply(z + lo * img, mean, ws->bn_coef, hi - lo, c, hw, g + lo * img);
    }
}

static void relu_pool_backward(const esm_net_ws *ws, const esm_block *k, const float *z, const float *scale,
                               const float *shift, const float *d_out, int n, float *d_y)
{
    int nt = team(ws, n);
    size_t in_img = (size_t)k->cout * k->h * k->w, out_img = (size_t)k->cout * (k->h / 2) * (k->w / 2);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int lo, hi;
        share(n, t, nt, &lo, &hi);
        if (hi > lo)
            esm_affine_relu_pool_backward(z + lo * in_img, scale, shift, d_out + lo * out_img, hi - lo, k->cout, k->h,
                                          k->w, d_y + lo * in_img);
    }
}

/* Block k's conv backward over fixed partitions of images (a multiple of the conv's GEMM group,
 * so the GEMMs are the ones a single call makes): each partition sums its own weight and bias
 * gradient, and the partitions are added in order. One partition is a plain call. */
static void conv_backward(esm_net_ws *ws, const esm_block *k, const float *inp, const float *wgt, const float *dz,
                          int n, float *d_inp, float *d_wgt, float *d_bias)
{
    int g = esm_conv3x3_group_images(k->h * k->w);
    int part = (ESM_NET_PART_IMAGES + g - 1) / g * g, parts = (n + part - 1) / part;
    if (parts == 1) {
        esm_conv3x3_backward(inp, wgt, dz, n, k->cin, k->cout, k->h, k->w, ws->conv_scratch, d_inp, d_wgt, d_bias);
        return;
    }
    size_t hw = (size_t)k->h * k->w, nw = (size_t)k->cout * k->cin * 9;
    int nt = team(ws, parts);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        /* dynamic: 600 images are 19 partitions, 10 and 9 of them statically (320 images against
         * 280); each partition sums into its own slot, so who takes which cannot change the bits */
#pragma omp for schedule(dynamic, 1)
        for (int p = 0; p < parts; p++) {
            size_t lo = (size_t)p * part;
            int m = n - (int)lo < part ? n - (int)lo : part;
            float *pg = ws->part_grad + (size_t)p * ws->part_stride;
            esm_conv3x3_backward(inp + lo * k->cin * hw, wgt, dz + lo * k->cout * hw, m, k->cin, k->cout, k->h, k->w,
                                 esm_ws_scratch(ws, omp_get_thread_num()), d_inp ? d_inp + lo * k->cin * hw : NULL,
                                 pg, pg + nw);
        }
        /* past the loop's implicit barrier every partition's sums are in */
#pragma omp for schedule(static)
        for (size_t j = 0; j < nw + k->cout; j++) {
            float sum = ws->part_grad[j];
            for (int p = 1; p < parts; p++)
                sum += ws->part_grad[(size_t)p * ws->part_stride + j];
            if (j < nw)
                d_wgt[j] = sum;
            else
                d_bias[j - nw] = sum;
        }
    }
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
        relu_pool_backward(ws, k, ws->z[b], ws->scale + sb, ws->shift + sb, d_pool, n, ws->g_big);
        batchnorm_backward(ws, k, ws->z[b], ws->mean + sb, ws->var + sb, params + k->gamma_off, n, ws->g_big,
                           grad + k->gamma_off, grad + k->beta_off);
        /* g_small is (n, cin, h, w): d of this block's input, the previous block's pool output */
        conv_backward(ws, k, ws->in[b], params + k->w_off, ws->g_big, n, b > 0 ? ws->g_small : NULL, grad + k->w_off,
                      grad + k->b_off);
        d_pool = ws->g_small;
    }
    return ESM_OK;
}
