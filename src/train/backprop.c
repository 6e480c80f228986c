/* The backprop trainer: ProtoNet episodes, exact gradients, Adam (Snell et al. 2017).
 *
 * A step takes E = episodes_per_step episodes (E*done .. E*done+E-1). Each rank computes its
 * contiguous share of them; the ranks allgather one block per episode, [status, loss, acc,
 * gradient, running statistics], and every rank sums the gradients in episode order (so the
 * sum has the same bits for any rank count), divides by E and takes the same Adam step. Every
 * episode updates its own copy of the step's starting running statistics, and the new running
 * statistics are the mean of those copies: for E = 1 that is exactly the sequential update. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "esmeta/optim.h"
#include "esmeta/protonet.h"
#include "train/trainer_internal.h"

/* Floats of an episode block besides the gradient and statistics: status, loss, acc. */
#define HEAD 3

typedef struct {
    esm_adam adam;
    esm_protonet_ws *ws;
    esm_episode ep;
    float *send, *recv;  /* exchange blocks: [slice * block] and [E * block] */
    int *counts;         /* [ranks] floats each rank contributes */
    int x_ranks;         /* the rank count the exchange is sized for (0 = none yet) */
    unsigned char adam_step[8];
} backprop_state;

static size_t block_floats(const esm_trainer *t) { return HEAD + t->net.n_params + t->net.n_bn; }

static esm_status bp_init(esm_trainer *t, esm_err *err)
{
    backprop_state *b = calloc(1, sizeof *b);
    if (!b)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    t->impl = b;
    esm_episode_shape s = t->cfg.shape;
    esm_adam_config ac = esm_adam_config_default(t->cfg.lr);
    ac.weight_decay = t->cfg.weight_decay;
    esm_status st = esm_adam_init(&b->adam, t->net.n_params, &ac, err);
    if (st == ESM_OK)
        st = esm_protonet_ws_create(&t->net, s.way, s.shot, s.way * s.query, 1, &b->ws, err);
    /* One episode at a time, its images split over every thread (the bits do not depend on how many). */
    if (st == ESM_OK)
        st = esm_protonet_ws_set_threads(b->ws, omp_get_max_threads(), err);
    if (st == ESM_OK)
        st = esm_episode_init(&b->ep, t->ds, s, err);
    return st;
}

static esm_status ensure_exchange(const esm_trainer *t, backprop_state *b, esm_err *err)
{
    int n = esm_dist_size(t->dist), e = t->cfg.episodes_per_step;
    if (b->x_ranks == n)
        return ESM_OK;
    free(b->send), free(b->recv), free(b->counts);
    size_t block = block_floats(t);
    b->send = malloc((size_t)(e / n + 1) * block * sizeof(float));
    b->recv = malloc((size_t)e * block * sizeof(float));
    b->counts = malloc((size_t)n * sizeof(int));
    b->x_ranks = 0;
    if (!b->send || !b->recv || !b->counts)
        return esm_fail(err, ESM_ENOMEM, "out of memory for the gradients of %d episodes", e);
    for (int r = 0; r < n; r++) {
        int lo, hi;
        esm_dist_slice(e, r, n, &lo, &hi);
        b->counts[r] = (int)((size_t)(hi - lo) * block);
    }
    b->x_ranks = n;
    return ESM_OK;
}

/* Episode j of this step into block: status, loss, acc, gradient, updated running stats. */
static void run_episode(esm_trainer *t, backprop_state *b, int j, float *block, esm_err *err)
{
    esm_episode_shape s = t->cfg.shape;
    uint64_t index = (uint64_t)t->done * (uint64_t)t->cfg.episodes_per_step + (uint64_t)j;
    esm_episode_sample(&b->ep, t->ds, t->sp, t->cfg.seed, index);
    float *grad = block + HEAD, *bn = grad + t->net.n_params;
    memcpy(bn, t->bn_running, t->net.n_bn * sizeof(float));
    float loss = NAN, acc = NAN;
    esm_status st = esm_protonet_loss_grad(&t->net, t->params, bn, ESM_BN_TRAIN, b->ws, b->ep.support, s.way, s.shot,
                                           b->ep.query, b->ep.query_label, s.way * s.query, &loss, &acc, grad, err);
    block[0] = (float)st, block[1] = loss, block[2] = acc;
}

/* The first failure in episode order, the same on every rank; own: this rank's error. */
static esm_status check_blocks(const esm_trainer *t, const backprop_state *b, esm_status own, esm_err *err)
{
    size_t block = block_floats(t);
    int e = t->cfg.episodes_per_step;
    for (int j = 0; j < e; j++) {
        const float *p = b->recv + (size_t)j * block;
        esm_status st = (esm_status)p[0];
        if (st != ESM_OK && own != ESM_OK)
            return own;
        if (st != ESM_OK)
            return esm_fail(err, ESM_EDIST, "step %lld: another rank failed on episode %d of the step (%s; its own "
                            "message is on its stderr)", (long long)t->done + 1, j, esm_status_name(st));
        if (!isfinite(p[1]) || !esm_all_finite(p + HEAD, t->net.n_params))
            return esm_fail_field(err, ESM_ENONFINITE, "lr", "step %lld (episode %lld): the loss or its gradient is "
                                  "not finite (loss %g); the update was not applied; try a smaller lr",
                                  (long long)t->done + 1,
                            (long long)t->done * e + j + 1, (double)p[1]);
    }
    return own;
}

/* Gradient (into the first block) and running statistics (into t) averaged in episode order. */
static void combine(esm_trainer *t, backprop_state *b, esm_train_stats *stats)
{
    size_t block = block_floats(t), n = t->net.n_params + t->net.n_bn;
    int e = t->cfg.episodes_per_step;
    float *sum = b->recv + HEAD;
    double ls = b->recv[1], as = b->recv[2];
    for (int j = 1; j < e; j++) {
        const float *p = b->recv + (size_t)j * block;
        for (size_t k = 0; k < n; k++)
            sum[k] += p[HEAD + k];
        ls += p[1], as += p[2];
    }
    if (e > 1)
        for (size_t k = 0; k < n; k++)
            sum[k] /= (float)e;
    memcpy(t->bn_running, sum + t->net.n_params, t->net.n_bn * sizeof(float));
    stats->loss = (float)(ls / e);
    stats->acc = (float)(as / e);
}

static esm_status bp_step(esm_trainer *t, esm_train_stats *stats, esm_err *err)
{
    backprop_state *b = t->impl;
    esm_status st = ensure_exchange(t, b, err);
    if (st != ESM_OK)
        return st;
    int lo, hi;
    size_t block = block_floats(t);
    esm_dist_slice(t->cfg.episodes_per_step, esm_dist_rank(t->dist), esm_dist_size(t->dist), &lo, &hi);
    esm_status own = ESM_OK;
    for (int j = lo; j < hi; j++) {
        float *blk = b->send + (size_t)(j - lo) * block;
        run_episode(t, b, j, blk, own == ESM_OK ? err : NULL);
        if (own == ESM_OK && blk[0] != (float)ESM_OK)
            own = (esm_status)blk[0];
    }
    st = esm_dist_allgather_f32(t->dist, b->send, b->recv, b->counts, err);
    if (st == ESM_OK)
        st = check_blocks(t, b, own, err);
    if (st != ESM_OK)
        return st; /* nothing of t has changed yet */
    combine(t, b, stats);
    float lr = esm_lr_at(&t->cfg, t->done);
    b->adam.cfg.lr = lr;
    esm_adam_step(&b->adam, t->params, b->recv + HEAD);
    esm_episode_shape s = t->cfg.shape;
    stats->lr = lr;
    stats->images = (int64_t)t->cfg.episodes_per_step * s.way * (s.shot + s.query);
    return ESM_OK;
}

static int bp_sections(const esm_trainer *t, esm_ckpt_section *out, int cap)
{
    backprop_state *b = t->impl;
    if (cap < 2)
        return 0;
    esm_put_u64(b->adam_step, (uint64_t)b->adam.step);
    out[0] = (esm_ckpt_section){"adam_state", b->adam.state, esm_adam_state_floats(b->adam.n) * sizeof(float)};
    out[1] = (esm_ckpt_section){"adam_step", b->adam_step, 8};
    return 2;
}

static esm_status bp_restore(esm_trainer *t, const esm_ckpt *c, esm_err *err)
{
    backprop_state *b = t->impl;
    const void *state, *step;
    size_t bytes = esm_adam_state_floats(b->adam.n) * sizeof(float);
    esm_status st = esm_ckpt_get(c, "adam_state", bytes, &state, NULL, err);
    if (st == ESM_OK)
        st = esm_ckpt_get(c, "adam_step", 8, &step, NULL, err);
    if (st != ESM_OK)
        return st;
    memcpy(b->adam.state, state, bytes);
    esm_reader r = {.buf = step, .len = 8, .ok = 1};
    b->adam.step = (int64_t)esm_get_u64(&r);
    return ESM_OK;
}

static void bp_free(esm_trainer *t)
{
    backprop_state *b = t->impl;
    esm_adam_free(&b->adam);
    esm_protonet_ws_free(b->ws);
    esm_episode_free(&b->ep);
    free(b->send), free(b->recv), free(b->counts);
    free(b);
    t->impl = NULL;
}

const esm_trainer_ops esm_backprop_ops = {
    .name = "backprop",
    .init = bp_init,
    .step = bp_step,
    .sections = bp_sections,
    .restore = bp_restore,
    .free = bp_free,
};
