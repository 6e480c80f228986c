/* Episode loss through the net: one forward over support + query, the head, and backward. */
#include "esmeta/protonet.h"

#include <stdlib.h>
#include <string.h>

struct esm_protonet_ws {
    int max_way, max_shot, max_query, with_backward;
    esm_net_ws *net_ws;
    float *x;       /* (max_way*max_shot + max_query, C, H, W) support then query */
    float *emb;     /* (same rows, dim) */
    float *d_emb;   /* (same rows, dim), with backward only */
    float *scratch; /* head scratch */
};

esm_status esm_protonet_ws_create(const esm_net *net, int max_way, int max_shot, int max_query, int with_backward,
                                  esm_protonet_ws **out, esm_err *err)
{
    *out = NULL;
    if (max_way < 1 || max_shot < 1 || max_query < 1)
        return esm_fail(err, ESM_EINVAL, "protonet workspace: way %d, shot %d, queries %d must all be positive",
                        max_way, max_shot, max_query);
    int rows = max_way * max_shot + max_query;
    esm_protonet_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return esm_fail(err, ESM_ENOMEM, "protonet workspace: out of memory");
    *ws = (esm_protonet_ws){.max_way = max_way, .max_shot = max_shot, .max_query = max_query,
                            .with_backward = with_backward != 0};
    esm_status st = esm_net_ws_create(net, rows, with_backward, &ws->net_ws, err);
    if (st != ESM_OK) {
        free(ws);
        return st;
    }
    ws->x = malloc((size_t)rows * net->in_size * sizeof(float));
    ws->emb = malloc((size_t)rows * net->emb_dim * sizeof(float));
    ws->d_emb = with_backward ? malloc((size_t)rows * net->emb_dim * sizeof(float)) : NULL;
    ws->scratch = malloc(esm_protonet_head_scratch(max_way, max_query, net->emb_dim) * sizeof(float));
    if (!ws->x || !ws->emb || (with_backward && !ws->d_emb) || !ws->scratch) {
        esm_protonet_ws_free(ws);
        return esm_fail(err, ESM_ENOMEM, "protonet workspace: out of memory for %d images", rows);
    }
    *out = ws;
    return ESM_OK;
}

esm_status esm_protonet_ws_set_threads(esm_protonet_ws *ws, int threads, esm_err *err)
{
    return esm_net_ws_set_threads(ws->net_ws, threads, err);
}

void esm_protonet_ws_free(esm_protonet_ws *ws)
{
    if (!ws)
        return;
    esm_net_ws_free(ws->net_ws);
    free(ws->x);
    free(ws->emb);
    free(ws->d_emb);
    free(ws->scratch);
    free(ws);
}

static esm_status run_episode(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                              esm_protonet_ws *ws, const float *cols, const float *support, int way, int shot,
                              const float *query, const int *labels, int n_query, float *loss, float *acc,
                              float *grad, esm_err *err)
{
    if (way < 1 || shot < 1 || n_query < 1 || way > ws->max_way || shot > ws->max_shot || n_query > ws->max_query)
        return esm_fail(err, ESM_EINVAL,
                        "protonet loss: way %d, shot %d, queries %d must be in 1..%d, 1..%d, 1..%d (the workspace's)",
                        way, shot, n_query, ws->max_way, ws->max_shot, ws->max_query);
    int ns = way * shot, n = ns + n_query, dim = net->emb_dim;
    size_t img = (size_t)net->in_size;
    /* with the lowered input, a forward-only pass never reads the images */
    const float *x = NULL;
    if (!cols || ws->with_backward) {
        memcpy(ws->x, support, (size_t)ns * img * sizeof(float));
        memcpy(ws->x + (size_t)ns * img, query, (size_t)n_query * img * sizeof(float));
        x = ws->x;
    }
    esm_status st = esm_net_forward_lowered(net, params, bn_running, ws->net_ws, x, cols, n, mode, ws->emb, err);
    if (st != ESM_OK)
        return st;
    float *ds = grad ? ws->d_emb : NULL, *dq = grad ? ws->d_emb + (size_t)ns * dim : NULL;
    st = esm_protonet_head(ws->emb, ws->emb + (size_t)ns * dim, labels, way, shot, n_query, dim, ws->scratch, loss,
                           acc, ds, dq, err);
    if (st != ESM_OK || !grad)
        return st;
    return esm_net_backward(net, params, ws->net_ws, ws->d_emb, grad, err);
}

esm_status esm_protonet_loss(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                             esm_protonet_ws *ws, const float *support, int way, int shot, const float *query,
                             const int *labels, int n_query, float *loss, float *acc, esm_err *err)
{
    return run_episode(net, params, bn_running, mode, ws, NULL, support, way, shot, query, labels, n_query, loss,
                       acc, NULL, err);
}

size_t esm_protonet_lowered_floats(const esm_net *net, int way, int shot, int n_query)
{
    return esm_net_lowered_floats(net, way * shot + n_query);
}

esm_status esm_protonet_lower_episode(const esm_net *net, const float *support, int way, int shot,
                                      const float *query, int n_query, float *cols, esm_err *err)
{
    int ns = way * shot, n = ns + n_query;
    if (way < 1 || shot < 1 || n_query < 1)
        return esm_fail(err, ESM_EINVAL, "protonet lower episode: way %d, shot %d, queries %d must all be positive",
                        way, shot, n_query);
    esm_status st = esm_net_lower_input(net, support, 0, ns, n, cols, err);
    return st != ESM_OK ? st : esm_net_lower_input(net, query, ns, n_query, n, cols, err);
}

esm_status esm_protonet_loss_lowered(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                                     esm_protonet_ws *ws, const float *cols, const float *support, int way, int shot,
                                     const float *query, const int *labels, int n_query, float *loss, float *acc,
                                     esm_err *err)
{
    return run_episode(net, params, bn_running, mode, ws, cols, support, way, shot, query, labels, n_query, loss,
                       acc, NULL, err);
}

esm_status esm_protonet_loss_grad(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                                  esm_protonet_ws *ws, const float *support, int way, int shot,
                                  const float *query, const int *labels, int n_query, float *loss, float *acc,
                                  float *grad, esm_err *err)
{
    if (!ws->with_backward)
        return esm_fail(err, ESM_EINVAL, "protonet loss_grad: the workspace was made without backward; create it "
                                         "with with_backward = 1");
    if (mode == ESM_BN_EVAL)
        return esm_fail(err, ESM_EINVAL, "protonet loss_grad: gradients need batch statistics; use ESM_BN_TRAIN or "
                                         "ESM_BN_BATCH, not ESM_BN_EVAL");
    return run_episode(net, params, bn_running, mode, ws, NULL, support, way, shot, query, labels, n_query, loss,
                       acc, grad, err);
}
