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
/* Splits each episode's images over up to `threads` threads (esm_net_ws_set_threads): the
 * same bits for any count. */
esm_status esm_protonet_ws_set_threads(esm_protonet_ws *ws, int threads, esm_err *err);

/* Runs the net once over support and query concatenated (support first), as Snell's code
 * does, so batch statistics span the whole episode. support (way*shot, C, H, W) class-major,
 * query (n_query, C, H, W) with labels (n_query). bn_running may be NULL except in eval mode. */
esm_status esm_protonet_loss(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                             esm_protonet_ws *ws, const float *support, int way, int shot, const float *query,
                             const int *labels, int n_query, float *loss, float *acc, esm_err *err);

/* esm_protonet_loss with block 0's lowered input computed once for an episode that many
 * parameter vectors score (ES members): esm_protonet_lower_episode fills cols
 * (esm_protonet_lowered_floats) from the episode's images, and esm_protonet_loss_lowered then gives
 * bit-identical results to esm_protonet_loss without lowering the images again. cols is only read
 * (threads may share it) and must come from the same support and query. */
size_t esm_protonet_lowered_floats(const esm_net *net, int way, int shot, int n_query);
esm_status esm_protonet_lower_episode(const esm_net *net, const float *support, int way, int shot,
                                      const float *query, int n_query, float *cols, esm_err *err);
esm_status esm_protonet_loss_lowered(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                                     esm_protonet_ws *ws, const float *cols, const float *support, int way, int shot,
                                     const float *query, const int *labels, int n_query, float *loss, float *acc,
                                     esm_err *err);

/* The same as esm_protonet_loss, and grad (n_params) = dloss/dparams. mode must be a batch-statistics mode and
 * the workspace made with_backward. */
esm_status esm_protonet_loss_grad(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                                  esm_protonet_ws *ws, const float *support, int way, int shot,
                                  const float *query, const int *labels, int n_query, float *loss, float *acc,
                                  float *grad, esm_err *err);

/* ---- streamed episodes: memory that does not grow with the episode ----
 * An episode of any size is fed through a fixed workspace of `chunk` images. Rows 0..way*shot-1
 * are the support, class-major (row r is class r/shot), then the n_query queries. The callback
 * writes rows first..first+count-1 into x (count, C, H, W) and their classes into label[count]
 * (only the queries' are read); it is called once per pass over the episode, in row order, so a
 * caller may generate or decode the images on demand instead of holding them.
 *
 * Batch norm stays exact: batch statistics span the whole episode, as in esm_protonet_loss.
 * Block b's statistics need every image through blocks 0..b with the earlier statistics known, so
 * an episode of more than `chunk` images takes depth + 1 passes: pass b recomputes blocks 0..b-1
 * chunk by chunk with their now-known statistics and merges block b's conv moments (the exact
 * streamed mean and variance, Chan et al.'s update, as esm_net_forward merges them); the last pass
 * computes the embeddings, sums support embeddings into prototypes and adds up the queries'
 * losses. Block j's conv thus runs depth - j + 1 times: 3.8x the conv FLOPs of one forward for the
 * default conv-4 on 28x28 (74.5 vs 19.6 MFLOP per image), the price of exactness in
 * O(chunk + way*dim) memory. An episode of at most `chunk` images takes the ordinary single pass
 * (esm_net_forward on the chunk workspace), bit-identical to esm_protonet_loss at no extra cost.
 * Streamed results equal the whole-episode ones up to float rounding in the order moments are
 * merged (tests allow 1e-5 relative on the loss). */
typedef void (*esm_rows_fn)(void *ctx, int first, int count, float *x, int *label);

typedef struct {
    int way, shot, n_query;
    esm_rows_fn rows;
    void *ctx;
} esm_episode_stream;

/* An episode held in memory as esm_protonet_loss takes it; esm_episode_stream_arrays fills ctx
 * (which must outlive the stream) and returns the stream over it. */
typedef struct {
    const float *support, *query;
    const int *labels;
    int n_support, image_size;
} esm_episode_arrays;
esm_episode_stream esm_episode_stream_arrays(esm_episode_arrays *ctx, const float *support, int way, int shot,
                                             const float *query, const int *labels, int n_query, int image_size);

typedef struct esm_protonet_stream esm_protonet_stream;

/* A workspace for episodes of at most max_way classes, any number of images, `chunk` at a time. */
esm_status esm_protonet_stream_create(const esm_net *net, int max_way, int chunk, esm_protonet_stream **out,
                                      esm_err *err);
void esm_protonet_stream_free(esm_protonet_stream *ws);
/* Bytes such a workspace takes: a function of the net, max_way and chunk only. */
size_t esm_protonet_stream_bytes(const esm_net *net, int max_way, int chunk);

/* esm_protonet_loss over a streamed episode, any mode (ESM_BN_TRAIN updates bn_running with the
 * whole episode's statistics, as esm_protonet_loss does). */
esm_status esm_protonet_loss_stream(const esm_net *net, const float *params, float *bn_running, esm_bn_mode mode,
                                    esm_protonet_stream *ws, const esm_episode_stream *ep, float *loss, float *acc,
                                    esm_err *err);

#ifdef __cplusplus
}
#endif
#endif
