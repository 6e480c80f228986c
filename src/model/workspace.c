/* Workspace sizing and allocation: one block of memory carved into buffers. */
#include "ws.h"

#include <stdlib.h>
#include <string.h>

/* Carves buffers from base (or only counts when base is NULL); 64-byte aligned pieces. */
typedef struct {
    char *base;
    size_t used;
} carver;

static float *carve(carver *c, size_t n_floats)
{
    size_t bytes = (n_floats * sizeof(float) + 63) & ~(size_t)63;
    float *p = c->base ? (float *)(c->base + c->used) : NULL;
    c->used += bytes;
    return p;
}

static void layout(const esm_net *net, int max_n, int with_backward, carver *c, struct esm_net_ws *ws)
{
    size_t n = (size_t)max_n, max_z = 0, max_in = 0, max_scratch = 0, max_grad = 0;
    int depth = net->cfg.depth, width = net->cfg.width;
    for (int b = 0; b < depth; b++) {
        const esm_block *k = &net->block[b];
        size_t zs = n * k->cout * k->h * k->w, is = n * k->cin * k->h * k->w;
        size_t cs = esm_conv3x3_scratch(k->cin, k->cout, k->h, k->w);
        size_t gs = (size_t)k->cout * (k->cin * 9 + 1);
        max_z = zs > max_z ? zs : max_z;
        max_in = is > max_in ? is : max_in;
        max_scratch = cs > max_scratch ? cs : max_scratch;
        max_grad = gs > max_grad ? gs : max_grad;
    }
    const esm_block *k0 = &net->block[0];
    int taps = k0->cin <= ESM_TAP_MAX_CIN;
    if (taps) {
        size_t ts = esm_tap_moments_scratch(k0->cin, k0->h, k0->w);
        max_scratch = ts > max_scratch ? ts : max_scratch;
    }
    ws->scratch_floats = (max_scratch + 15) & ~(size_t)15; /* keeps every thread's scratch 64-byte aligned */
    ws->seg = carve(c, n * width * 2);
    ws->bn_coef = carve(c, (size_t)width * 3);
    if (with_backward) {
        for (int b = 0; b < depth; b++) {
            const esm_block *k = &net->block[b];
            ws->in[b] = carve(c, n * k->cin * k->h * k->w);
            ws->z[b] = carve(c, n * k->cout * k->h * k->w);
        }
        ws->g_big = carve(c, max_z);
        ws->g_small = carve(c, max_in);
        ws->max_parts = (max_n + ESM_NET_PART_IMAGES - 1) / ESM_NET_PART_IMAGES;
        ws->part_stride = (max_grad + 15) & ~(size_t)15;
        ws->part_grad = carve(c, (size_t)ws->max_parts * ws->part_stride);
    } else {
        /* Block b's conv reads in[b] and writes z; its pool reads z and writes in[b+1]: two
         * buffers suffice. in[0] is the caller's x. */
        float *shared_z = carve(c, max_z);
        float *shared_in = depth > 1 ? carve(c, max_in) : NULL;
        ws->in[0] = NULL;
        for (int b = 0; b < depth; b++) {
            ws->z[b] = shared_z;
            if (b > 0)
                ws->in[b] = shared_in;
        }
        ws->g_big = ws->g_small = NULL;
        ws->part_grad = NULL;
        ws->max_parts = 0;
    }
    ws->conv_scratch = carve(c, max_scratch);
    ws->mean = carve(c, (size_t)depth * width);
    ws->var = carve(c, (size_t)depth * width);
    ws->scale = carve(c, (size_t)depth * width);
    ws->shift = carve(c, (size_t)depth * width);
    ws->moments = (double *)carve(c, (size_t)6 * width); /* 3*width doubles; pieces are 64-byte aligned */
    ws->tap_mom = taps ? (double *)carve(c, 2 * n * esm_tap_moments_doubles(k0->cin)) : NULL;
}

size_t esm_net_ws_bytes(const esm_net *net, int max_n, int with_backward)
{
    carver c = {0};
    struct esm_net_ws tmp;
    layout(net, max_n, with_backward, &c, &tmp);
    return c.used + sizeof tmp;
}

esm_status esm_net_ws_create(const esm_net *net, int max_n, int with_backward, esm_net_ws **out, esm_err *err)
{
    *out = NULL;
    if (max_n <= 0)
        return esm_fail(err, ESM_EINVAL, "net workspace: max batch %d must be positive", max_n);
    struct esm_net_ws *ws = calloc(1, sizeof *ws);
    carver c = {0};
    layout(net, max_n, with_backward, &c, ws);
    void *mem = ws ? aligned_alloc(64, c.used) : NULL;
    if (!mem) {
        free(ws);
        return esm_fail(err, ESM_ENOMEM, "net workspace: cannot allocate %zu bytes for batch %d; use a smaller batch",
                        c.used, max_n);
    }
    c = (carver){.base = mem};
    layout(net, max_n, with_backward, &c, ws);
    ws->mem = mem;
    ws->max_n = max_n;
    ws->with_backward = with_backward != 0;
    ws->depth = net->cfg.depth;
    ws->cfg = net->cfg;
    ws->threads = 1;
    *out = ws;
    return ESM_OK;
}

esm_status esm_net_ws_set_threads(esm_net_ws *ws, int threads, esm_err *err)
{
    if (threads < 1)
        return esm_fail(err, ESM_EINVAL, "net workspace: %d threads; use 1 or more", threads);
    if (threads == ws->threads)
        return ESM_OK;
    float *extra = NULL;
    if (threads > 1) {
        size_t bytes = (size_t)(threads - 1) * ws->scratch_floats * sizeof(float);
        extra = aligned_alloc(64, bytes);
        if (!extra)
            return esm_fail(err, ESM_ENOMEM, "net workspace: cannot allocate %zu bytes of scratch for %d threads; "
                            "use fewer threads", bytes, threads);
    }
    free(ws->thread_scratch);
    ws->thread_scratch = extra;
    ws->threads = threads;
    return ESM_OK;
}

void esm_net_ws_free(esm_net_ws *ws)
{
    if (!ws)
        return;
    free(ws->mem);
    free(ws->thread_scratch);
    free(ws);
}
