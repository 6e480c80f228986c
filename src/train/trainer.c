/* The trainer interface: creation, resumption, stepping and saving, shared by all trainers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "popeval/popeval.h"
#include "train/trainer_internal.h"

static const esm_trainer_ops *ops_for(esm_trainer_kind kind)
{
    switch (kind) {
    case ESM_TRAINER_BACKPROP: return &esm_backprop_ops;
    case ESM_TRAINER_ES: return &esm_es_trainer_ops;
    default: return NULL;
    }
}

static float halved(float x, int64_t every, int64_t done)
{
    return every <= 0 ? x : x * powf(0.5f, (float)(done / every));
}

float esm_lr_at(const esm_train_config *c, int64_t done)
{
    return halved(c->lr, c->lr_halve_every, done);
}

float esm_sigma_at(const esm_train_config *c, int64_t done)
{
    return halved(c->sigma, c->sigma_halve_every, done);
}

int esm_all_finite(const float *x, size_t n)
{
    /* Accumulating x*0 turns any NaN or infinity into NaN, without a branch per element. */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += x[i] * 0.0f;
    return acc == 0.0f;
}

uint64_t esm_split_hash(const esm_dataset *ds, const esm_split *sp)
{
    /* Names and rotations, not indices: stable across caches and folders of the same data. */
    uint64_t h = ESM_DIST_HASH_INIT;
    for (int i = 0; i < sp->n_classes; i++) {
        const char *name = ds->names[sp->classes[i].chr];
        unsigned char rot = (unsigned char)('0' + sp->classes[i].rot);
        h = esm_dist_hash(h, name, strlen(name));
        h = esm_dist_hash(h, &rot, 1);
    }
    return h;
}

/* The device, for a trainer of this kind: one of the popeval devices, and cpu for backprop. */
static esm_status check_device(esm_trainer_kind kind, const char *device, esm_err *err)
{
    if (!esm_popeval_device_known(device))
        return esm_fail_field(err, ESM_EINVAL, "device", "device '%s' is unknown: use cpu, cuda or cuda-tf32", device);
    if (kind != ESM_TRAINER_ES && device[0] && strcmp(device, "cpu"))
        return esm_fail_field(err, ESM_EINVAL, "device", "device %s needs trainer es: backprop runs on the CPU",
                              device);
    return ESM_OK;
}

static esm_status check_config(const esm_train_config *c, const esm_split *sp, esm_err *err)
{
    if (c->steps < 0)
        return esm_fail_field(err, ESM_EINVAL, "steps", "steps %lld must not be negative", (long long)c->steps);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return esm_fail_field(err, ESM_EINVAL, "lr", "lr %g must be a positive number", (double)c->lr);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return esm_fail_field(err, ESM_EINVAL, "weight_decay", "weight_decay %g must be zero or positive",
                              (double)c->weight_decay);
    if (c->trainer == ESM_TRAINER_BACKPROP && c->episodes_per_step < 1)
        return esm_fail_field(err, ESM_EINVAL, "episodes_per_step", "episodes_per_step %d must be at least 1",
                              c->episodes_per_step);
    if (c->stream_chunk < 0)
        return esm_fail_field(err, ESM_EINVAL, "stream_chunk", "stream_chunk %d must be 0 (whole episodes) or positive",
                              c->stream_chunk);
    if (c->trainer != ESM_TRAINER_ES && c->stream_chunk > 0)
        return esm_fail_field(err, ESM_EINVAL, "stream_chunk", "stream_chunk %d needs trainer es: only ES members are "
                              "scored streamed", c->stream_chunk);
    if (c->lr_halve_every < 0)
        return esm_fail_field(err, ESM_EINVAL, "lr_halve_every", "lr_halve_every %lld must not be negative",
                              (long long)c->lr_halve_every);
    esm_status st = check_device(c->trainer, c->device, err);
    return st != ESM_OK ? st : esm_episode_check(sp, c->shape, err);
}

static esm_status alloc_common(esm_trainer **out, const esm_train_config *cfg, const esm_dataset *ds,
                               const esm_split *sp, esm_err *err)
{
    *out = NULL;
    const esm_trainer_ops *ops = ops_for(cfg->trainer);
    if (!ops)
        return esm_fail(err, ESM_EUNSUPPORTED, "trainer '%s' is not available in this build",
                        esm_trainer_kind_name(cfg->trainer));
    esm_net_config nc = cfg->net;
    if (nc.in_channels != ds->channels || nc.in_height != ds->height || nc.in_width != ds->width)
        return esm_fail(err, ESM_EMISMATCH, "the model expects %dx%dx%d images but the data has %dx%dx%d",
                        nc.in_channels, nc.in_height, nc.in_width, ds->channels, ds->height, ds->width);
    esm_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    t->cfg = *cfg;
    t->ops = ops;
    t->ds = ds;
    t->sp = sp;
    esm_status st = esm_net_init(&t->net, &nc, err);
    if (st == ESM_OK) {
        t->params = malloc(t->net.n_params * sizeof(float));
        t->bn_running = malloc(t->net.n_bn * sizeof(float) + 1);
        if (!t->params || !t->bn_running)
            st = esm_fail(err, ESM_ENOMEM, "out of memory for %zu parameters", t->net.n_params);
    }
    if (st == ESM_OK) {
        esm_net_init_params(&t->net, cfg->seed, t->params, t->bn_running);
        st = ops->init(t, err);
    }
    if (st != ESM_OK) {
        esm_trainer_free(t);
        return st;
    }
    *out = t;
    return ESM_OK;
}

esm_status esm_trainer_create(const esm_train_config *cfg, const esm_dataset *ds, const esm_split *sp,
                              esm_trainer **out, esm_err *err)
{
    esm_status st = check_config(cfg, sp, err);
    if (st == ESM_OK)
        st = esm_blas_check_single_thread(err);
    if (st != ESM_OK)
        return st;
    esm_train_config c = *cfg;
    c.split_hash = esm_split_hash(ds, sp);
    /* The network's input is whatever the data holds; only a resumed run must match it. */
    c.net.in_channels = ds->channels;
    c.net.in_height = ds->height;
    c.net.in_width = ds->width;
    return alloc_common(out, &c, ds, sp, err);
}

static esm_status read_common(const esm_ckpt *ck, esm_train_config *cfg, esm_err *err)
{
    const void *text;
    size_t len;
    esm_status st = esm_ckpt_get(ck, "config", 0, &text, &len, err);
    return st != ESM_OK ? st : esm_config_from_text(text, len, cfg, ck->path, err);
}

static esm_status restore_common(esm_trainer *t, const esm_ckpt *ck, esm_err *err)
{
    const void *p, *bn, *prog;
    esm_status st = esm_ckpt_get(ck, "params", t->net.n_params * sizeof(float), &p, NULL, err);
    if (st == ESM_OK)
        st = esm_ckpt_get(ck, "bn_running", t->net.n_bn * sizeof(float), &bn, NULL, err);
    if (st == ESM_OK)
        st = esm_ckpt_get(ck, "progress", 8, &prog, NULL, err);
    if (st != ESM_OK)
        return st;
    memcpy(t->params, p, t->net.n_params * sizeof(float));
    memcpy(t->bn_running, bn, t->net.n_bn * sizeof(float));
    esm_reader r = {.buf = prog, .len = 8, .ok = 1};
    t->done = (int64_t)esm_get_u64(&r);
    return ESM_OK;
}

esm_status esm_trainer_resume(const char *path, const esm_dataset *ds, const esm_split *sp, esm_trainer **out,
                              esm_err *err)
{
    return esm_trainer_resume_on(path, NULL, ds, sp, out, err);
}

esm_status esm_trainer_resume_on(const char *path, const char *device, const esm_dataset *ds, const esm_split *sp,
                                 esm_trainer **out, esm_err *err)
{
    *out = NULL;
    esm_ckpt ck;
    esm_status st = esm_ckpt_read(path, &ck, err);
    if (st != ESM_OK)
        return st;
    esm_train_config cfg;
    st = read_common(&ck, &cfg, err);
    if (st == ESM_OK && cfg.split_hash != esm_split_hash(ds, sp))
        st = esm_fail_field(err, ESM_EMISMATCH, "split", "checkpoint %s was trained on the classes of split %s of another "
                            "data set: resume with the data set it was trained on", path, cfg.split);
    if (st == ESM_OK && device) {
        if (snprintf(cfg.device, sizeof cfg.device, "%s", device) >= (int)sizeof cfg.device)
            st = esm_fail_field(err, ESM_EINVAL, "device", "device '%s' is unknown: use cpu, cuda or cuda-tf32",
                                device);
        else
            st = check_device(cfg.trainer, cfg.device, err);
    }
    if (st == ESM_OK)
        st = alloc_common(out, &cfg, ds, sp, err);
    if (st == ESM_OK)
        st = restore_common(*out, &ck, err);
    if (st == ESM_OK)
        st = (*out)->ops->restore(*out, &ck, err);
    if (st != ESM_OK) {
        esm_trainer_free(*out);
        *out = NULL;
    }
    esm_ckpt_free(&ck);
    return st;
}

esm_status esm_trainer_step(esm_trainer *t, esm_train_stats *stats, esm_err *err)
{
    esm_train_stats s;
    memset(&s, 0, sizeof s);
    esm_status st = t->ops->step(t, &s, err);
    if (st != ESM_OK)
        return st;
    t->done++;
    s.step = t->done;
    /* Cheap insurance against silent divergence (a different binary, library or config on
     * one rank): the state hash costs O(params) locally and 16 bytes per rank on the wire. */
    if (esm_dist_size(t->dist) > 1 && t->done % ESM_TRAINER_DIST_CHECK_EVERY == 0) {
        st = esm_trainer_check_dist(t, err);
        if (st != ESM_OK)
            return st;
    }
    if (stats)
        *stats = s;
    return ESM_OK;
}

int64_t esm_trainer_steps_done(const esm_trainer *t) { return t->done; }

esm_status esm_trainer_set_steps(esm_trainer *t, int64_t steps, esm_err *err)
{
    if (steps < 0)
        return esm_fail(err, ESM_EINVAL, "step count %lld must not be negative", (long long)steps);
    t->cfg.steps = steps;
    return ESM_OK;
}
const esm_train_config *esm_trainer_config(const esm_trainer *t) { return &t->cfg; }

esm_model_view esm_trainer_model(const esm_trainer *t)
{
    esm_model_view v = {t->net, t->params, t->bn_running};
    return v;
}

esm_status esm_trainer_save(const esm_trainer *t, const char *path, esm_err *err)
{
    char cfg[2048];
    int n = esm_config_to_text(&t->cfg, cfg, sizeof cfg);
    if (n < 0 || n >= (int)sizeof cfg)
        return esm_fail(err, ESM_EINVAL, "configuration too long to save");
    unsigned char prog[8];
    esm_put_u64(prog, (uint64_t)t->done);
    esm_ckpt_section s[ESM_TRAINER_MAX_SECTIONS] = {
        {"config", cfg, (size_t)n},
        {"params", t->params, t->net.n_params * sizeof(float)},
        {"bn_running", t->bn_running, t->net.n_bn * sizeof(float)},
        {"progress", prog, sizeof prog},
    };
    int k = 4 + t->ops->sections(t, s + 4, ESM_TRAINER_MAX_SECTIONS - 4);
    return esm_ckpt_write(path, s, k, err);
}

/* Everything a checkpoint would hold, hashed in section order. */
static uint64_t state_hash(const esm_trainer *t)
{
    unsigned char prog[8];
    esm_put_u64(prog, (uint64_t)t->done);
    esm_ckpt_section s[ESM_TRAINER_MAX_SECTIONS] = {
        {"params", t->params, t->net.n_params * sizeof(float)},
        {"bn_running", t->bn_running, t->net.n_bn * sizeof(float)},
        {"progress", prog, sizeof prog},
    };
    int k = 3 + t->ops->sections(t, s + 3, ESM_TRAINER_MAX_SECTIONS - 3);
    uint64_t h = ESM_DIST_HASH_INIT;
    for (int i = 0; i < k; i++)
        h = esm_dist_hash(h, s[i].data, s[i].len);
    return h;
}

esm_status esm_trainer_check_dist(esm_trainer *t, esm_err *err)
{
    if (esm_dist_size(t->dist) <= 1)
        return ESM_OK;
    esm_status st = esm_dist_check_same(t->dist, state_hash(t), "the trained state", err);
    if (st == ESM_EDIST)
        return esm_fail(err, ESM_EDIST, "after step %lld the %d ranks hold different states (a different build, "
                        "library, data or configuration on some rank?); stopped", (long long)t->done,
                        esm_dist_size(t->dist));
    return st;
}

/* Ranks started with different options (or esmeta versions) would start from the same state
 * when the difference is, say, the learning rate, and only drift apart steps later: compare
 * the whole configuration first, so that they stop before the first step, naming the cause. */
static esm_status check_same_config(esm_trainer *t, esm_err *err)
{
    char cfg[2048];
    int n = esm_config_to_text(&t->cfg, cfg, sizeof cfg);
    if (n < 0 || n >= (int)sizeof cfg)
        return esm_fail(err, ESM_EINVAL, "configuration too long to compare");
    uint64_t h = esm_dist_hash(ESM_DIST_HASH_INIT, cfg, (size_t)n);
    h = esm_dist_hash(h, ESM_VERSION, sizeof ESM_VERSION);
    esm_status st = esm_dist_check_same(t->dist, h, "the configuration", err);
    if (st == ESM_EDIST)
        return esm_fail(err, ESM_EDIST, "the %d ranks were started with different configurations or esmeta versions "
                        "(compare their command lines); stopped before the first step", esm_dist_size(t->dist));
    return st;
}

static void decide_shard(esm_trainer *t)
{
    int n = esm_dist_size(t->dist);
    double work = (double)t->cfg.pop * (double)t->net.n_params;
    t->sharded = t->cfg.trainer == ESM_TRAINER_ES && n > 1 &&
                 (t->shard_mode == ESM_SHARD_ON || (t->shard_mode == ESM_SHARD_AUTO && work >= ESM_SHARD_AUTO_MIN_WORK));
}

esm_status esm_trainer_set_shard(esm_trainer *t, esm_shard_mode mode, esm_err *err)
{
    if (mode != ESM_SHARD_AUTO && mode != ESM_SHARD_ON && mode != ESM_SHARD_OFF)
        return esm_fail_field(err, ESM_EINVAL, "shard_mode", "shard_mode %d: use ESM_SHARD_AUTO, ESM_SHARD_ON or "
                              "ESM_SHARD_OFF", (int)mode);
    uint32_t m = (uint32_t)mode;
    esm_status st = esm_dist_check_same(t->dist, esm_dist_hash(ESM_DIST_HASH_INIT, &m, sizeof m), "the update sharding",
                                        err);
    if (st == ESM_EDIST)
        return esm_fail_field(err, ESM_EDIST, "shard_mode", "the %d ranks were asked for different update sharding "
                              "(shard_mode); give every rank the same", esm_dist_size(t->dist));
    if (st != ESM_OK)
        return st;
    t->shard_mode = mode;
    decide_shard(t);
    return ESM_OK;
}

int esm_trainer_sharded(const esm_trainer *t) { return t->sharded; }

esm_status esm_trainer_set_dist(esm_trainer *t, esm_dist *d, esm_err *err)
{
    t->dist = d;
    decide_shard(t);
    if (t->ops->dist_changed) {
        esm_status st = t->ops->dist_changed(t, err);
        if (st != ESM_OK)
            return st;
    }
    if (esm_dist_size(d) > 1) {
        esm_status st = check_same_config(t, err);
        if (st != ESM_OK)
            return st;
    }
    return esm_trainer_check_dist(t, err);
}

void esm_trainer_free(esm_trainer *t)
{
    if (!t)
        return;
    if (t->impl && t->ops)
        t->ops->free(t);
    free(t->params);
    free(t->bn_running);
    free(t);
}

esm_status esm_model_load(const char *path, esm_model *m, esm_err *err)
{
    memset(m, 0, sizeof *m);
    esm_ckpt ck;
    esm_status st = esm_ckpt_read(path, &ck, err);
    if (st != ESM_OK)
        return st;
    st = read_common(&ck, &m->cfg, err);
    if (st == ESM_OK)
        st = esm_net_init(&m->net, &m->cfg.net, err);
    const void *p = NULL, *bn = NULL;
    if (st == ESM_OK)
        st = esm_ckpt_get(&ck, "params", m->net.n_params * sizeof(float), &p, NULL, err);
    if (st == ESM_OK)
        st = esm_ckpt_get(&ck, "bn_running", m->net.n_bn * sizeof(float), &bn, NULL, err);
    if (st == ESM_OK) {
        m->params = malloc(m->net.n_params * sizeof(float));
        m->bn_running = malloc(m->net.n_bn * sizeof(float) + 1);
        if (!m->params || !m->bn_running)
            st = esm_fail(err, ESM_ENOMEM, "out of memory loading %s", path);
        else {
            memcpy(m->params, p, m->net.n_params * sizeof(float));
            memcpy(m->bn_running, bn, m->net.n_bn * sizeof(float));
        }
    }
    esm_ckpt_free(&ck);
    if (st != ESM_OK)
        esm_model_free(m);
    return st;
}

void esm_model_free(esm_model *m)
{
    free(m->params);
    free(m->bn_running);
    m->params = m->bn_running = NULL;
}
