/* esmeta protonet: the Prototypical Networks head (Snell et al. 2017) and episode losses.
 *
 * Prototypes are the mean support embedding of each class; logits are minus the squared
 * Euclidean distances to the prototypes; the loss is the mean cross-entropy over queries.
 * Support rows are class-major: class c's shots are rows c*shot .. c*shot+shot-1. */
#ifndef ESMETA_PROTONET_H
#define ESMETA_PROTONET_H

#include <stddef.h>

#include "esmeta/core.h"
#include "esmeta/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Floats of scratch esm_protonet_head needs. */
size_t esm_protonet_head_scratch(int way, int n_query, int dim);

/* emb_s (way*shot, dim), emb_q (n_query, dim), labels (n_query) in 0..way-1.
 * Writes loss and acc (fraction of queries whose nearest prototype is their class; either
 * may be NULL). d_emb_s (way*shot, dim) and d_emb_q (n_query, dim), when non-NULL, get
 * dloss/d(emb). scratch holds esm_protonet_head_scratch(...) floats. */
esm_status esm_protonet_head(const float *emb_s, const float *emb_q, const int *labels, int way, int shot,
                             int n_query, int dim, float *scratch, float *loss, float *acc, float *d_emb_s,
                             float *d_emb_q, esm_err *err);

/* Everything one episode's loss needs: the net workspace, the concatenated batch, the
 * embeddings and their gradients. Sized for at most max_way classes, max_shot shots and
 * max_query queries in all. */
typedef struct esm_protonet_ws esm_protonet_ws;

esm_status esm_protonet_ws_create(const esm_net *net, int max_way, int max_shot, int max_query, int with_backward,
                                  esm_protonet_ws **out, esm_err *err);
void esm_protonet_ws_free(esm_protonet_ws *ws);

/* Runs the net once over support and query concatenated (support first), as Snell's code
 * does, so batch statistics span the whole episode. support (way*shot, C, H, W) class-major,
 * query (n_query, C, H, W) with labels (n_query). bn_running may be NULL except in eval mode. */
esm_status esm_protonet_loss(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                             esm_protonet_ws *ws, const float *support, int way, int shot, const float *query,
                             const int *labels, int n_query, float *loss, float *acc, esm_err *err);

/* The same, and grad (n_params) = dloss/dparams. mode must be a batch-statistics mode and
 * the workspace made with_backward. */
esm_status esm_protonet_loss_grad(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                                  esm_protonet_ws *ws, const float *support, int way, int shot,
                                  const float *query, const int *labels, int n_query, float *loss, float *acc,
                                  float *grad, esm_err *err);

#ifdef __cplusplus
}
#endif
#endif
