/* Net shapes, the parameter layout, and PyTorch-default initialisation. */
#include "esmeta/model.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>

/* Philox stream ids for initialisation: c0 tags the purpose so that other users of the
 * same seed (episodes, ES noise) never draw the same numbers. */
#define INIT_STREAM_TAG 0x494E4954u /* "INIT" */

esm_net_config esm_net_config_default(void)
{
    esm_net_config c = {.in_channels = 1, .in_height = 28, .in_width = 28, .width = 64, .depth = 4};
    return c;
}

/* 1 if a block (cin -> cout on an h x w input) would take the parameter count p past what a
 * float array can hold in bytes, or its activations (cout * h * w, an int elsewhere) past INT_MAX:
 * a --width users can type must fail here, not wrap into a small allocation. */
static int block_params_overflow(int cin, int cout, int h, int w, size_t p)
{
    size_t n, total;
    if (__builtin_mul_overflow((size_t)cout, (size_t)cin * 9, &n) || __builtin_add_overflow(n, 3 * (size_t)cout, &n) ||
        __builtin_add_overflow(p, n, &total))
        return 1;
    return total > SIZE_MAX / sizeof(float) || (size_t)cout * (size_t)h * (size_t)w > INT_MAX;
}

esm_status esm_net_init(esm_net *net, const esm_net_config *cfg, esm_err *err)
{
    if (cfg->width <= 0)
        return esm_fail_field(err, ESM_EINVAL, "net.width", "net.width %d must be positive", cfg->width);
    if (cfg->in_channels <= 0 || cfg->in_height <= 0 || cfg->in_width <= 0)
        return esm_fail(err, ESM_EINVAL, "net config: input %dx%dx%d: all must be positive", cfg->in_channels,
                        cfg->in_height, cfg->in_width);
    if (cfg->depth <= 0 || cfg->depth > ESM_NET_MAX_DEPTH)
        return esm_fail_field(err, ESM_EINVAL, "net.depth", "net.depth %d must be in 1..%d", cfg->depth,
                              ESM_NET_MAX_DEPTH);
    *net = (esm_net){.cfg = *cfg};
    int cin = cfg->in_channels, h = cfg->in_height, w = cfg->in_width;
    size_t p = 0, r = 0;
    for (int b = 0; b < cfg->depth; b++) {
        if (h < 2 || w < 2)
            return esm_fail_field(err, ESM_EINVAL, "net.depth",
                                  "net.depth %d: block %d gets a %dx%d input that a 2x2 pool cannot halve; use a "
                                  "smaller net.depth or larger images",
                                  cfg->depth, b, h, w);
        esm_block *k = &net->block[b];
        int cout = cfg->width;
        *k = (esm_block){.cin = cin, .cout = cout, .h = h, .w = w, .ho = h / 2, .wo = w / 2};
        if (block_params_overflow(cin, cout, h, w, p))
            return esm_fail_field(err, ESM_EINVAL, "net.width", "net.width %d gives more parameters than memory can "
                                  "address; use a smaller net.width", cfg->width);
        k->w_off = p, p += (size_t)cout * cin * 9;
        k->b_off = p, p += cout;
        k->gamma_off = p, p += cout;
        k->beta_off = p, p += cout;
        k->mean_off = r, r += cout;
        k->var_off = r, r += cout;
        cin = cout, h = k->ho, w = k->wo;
    }
    net->n_params = p;
    net->n_bn = r;
    net->emb_dim = cin * h * w;
    net->in_size = cfg->in_channels * cfg->in_height * cfg->in_width;
    return ESM_OK;
}

void esm_net_init_params(const esm_net *net, uint64_t seed, float *params, float *bn_running)
{
    for (int b = 0; b < net->cfg.depth; b++) {
        const esm_block *k = &net->block[b];
        /* kaiming_uniform_(a=sqrt(5)) has bound gain*sqrt(3/fan_in) with gain = sqrt(1/3),
         * i.e. 1/sqrt(fan_in): the same bound PyTorch uses for the bias. */
        float bound = (float)(1.0 / sqrt((double)k->cin * 9));
        esm_stream sw = esm_stream_make(seed, INIT_STREAM_TAG, (uint32_t)b, 0);
        esm_stream sb = esm_stream_make(seed, INIT_STREAM_TAG, (uint32_t)b, 1);
        size_t nw = (size_t)k->cout * k->cin * 9;
        for (size_t i = 0; i < nw; i++)
            params[k->w_off + i] = bound * (2.0f * esm_stream_uniform(&sw) - 1.0f);
        for (int c = 0; c < k->cout; c++) {
            params[k->b_off + c] = bound * (2.0f * esm_stream_uniform(&sb) - 1.0f);
            params[k->gamma_off + c] = 1.0f;
            params[k->beta_off + c] = 0.0f;
        }
        if (bn_running) {
            for (int c = 0; c < k->cout; c++) {
                bn_running[k->mean_off + c] = 0.0f;
                bn_running[k->var_off + c] = 1.0f;
            }
        }
    }
    assert(net->cfg.depth > 0);
}
