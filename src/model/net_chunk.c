/* One chunk of a streamed forward: the blocks whose batch statistics are already known, then
 * either the next block's conv moments or the embeddings. esm_protonet_loss_stream calls it once
 * per chunk per pass; the arithmetic of every block is esm_net_forward's, so an episode that is
 * streamed differs from one run whole only in the order moments are merged across chunks. */
#include "ws.h"

esm_status esm_net_forward_chunk(const esm_net *net, const float *params, const float *fold, int blocks,
                                 esm_net_ws *ws, const float *x, int n, double *acc, float *out, esm_err *err)
{
    ws->last_n = 0;
    int depth = net->cfg.depth, width = net->cfg.width;
    if (!esm_net_config_same(&ws->cfg, &net->cfg))
        return esm_fail(err, ESM_EMISMATCH, "net forward chunk: the workspace was made for another net "
                                            "configuration; create one with this net");
    if (n <= 0 || n > ws->max_n || blocks < 0 || blocks > depth)
        return esm_fail(err, ESM_EINVAL, "net forward chunk: batch %d outside 1..%d or blocks %d outside 0..%d", n,
                        ws->max_n, blocks, depth);
    const float *a = x;
    for (int b = 0; b <= blocks && b < depth; b++) {
        const esm_block *k = &net->block[b];
        esm_conv_and_moments(k, params + k->w_off, a, NULL, n, b == blocks ? acc : NULL, ws, ws->z[b]);
        if (b == blocks)
            return ESM_OK;
        float *dst = b == depth - 1 ? out : ws->in[b + 1];
        const float *scale = fold + (size_t)2 * b * width, *shift = scale + width;
        esm_affine_relu_pool_forward(ws->z[b], scale, shift, n, k->cout, k->h, k->w, dst);
        a = dst;
    }
    return ESM_OK;
}
