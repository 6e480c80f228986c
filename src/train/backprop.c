/* The backprop trainer: ProtoNet episodes, exact gradients, Adam (Snell et al. 2017). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "esmeta/optim.h"
#include "esmeta/protonet.h"
#include "train/trainer_internal.h"

typedef struct {
    esm_adam adam;
    esm_protonet_ws *ws;
    esm_episode ep;
    float *grad;       /* (n_params) */
    float *bn_backup;  /* (n_bn) running statistics before the step, to undo a failed one */
    unsigned char adam_step[8];
} backprop_state;

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
    if (st == ESM_OK)
        st = esm_episode_init(&b->ep, t->ds, s, err);
    if (st == ESM_OK) {
        b->grad = malloc(t->net.n_params * sizeof(float));
        b->bn_backup = malloc(t->net.n_bn * sizeof(float) + 1);
        if (!b->grad || !b->bn_backup)
            st = esm_fail(err, ESM_ENOMEM, "out of memory");
    }
    return st;
}

static esm_status bp_step(esm_trainer *t, esm_train_stats *stats, esm_err *err)
{
    backprop_state *b = t->impl;
    esm_episode_shape s = t->cfg.shape;
    int n_query = s.way * s.query;
    esm_episode_sample(&b->ep, t->ds, t->sp, t->cfg.seed, (uint64_t)t->done);
    memcpy(b->bn_backup, t->bn_running, t->net.n_bn * sizeof(float));
    float loss = 0, acc = 0;
    esm_status st = esm_protonet_loss_grad(&t->net, t->params, t->bn_running, ESM_BN_TRAIN, b->ws, b->ep.support,
                                           s.way, s.shot, b->ep.query, b->ep.query_label, n_query, &loss, &acc,
                                           b->grad, err);
    if (st == ESM_OK && (!isfinite(loss) || !esm_all_finite(b->grad, t->net.n_params)))
        st = esm_fail(err, ESM_ENONFINITE, "episode %lld: the loss or its gradient is not finite (loss %g); the "
                      "update was not applied; try a smaller --lr", (long long)t->done + 1, (double)loss);
    if (st != ESM_OK) {
        memcpy(t->bn_running, b->bn_backup, t->net.n_bn * sizeof(float));
        return st;
    }
    float lr = esm_lr_at(&t->cfg, t->done);
    b->adam.cfg.lr = lr;
    esm_adam_step(&b->adam, t->params, b->grad);
    stats->loss = loss;
    stats->acc = acc;
    stats->lr = lr;
    stats->images = (int64_t)s.way * (s.shot + s.query);
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
    free(b->grad);
    free(b->bn_backup);
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
