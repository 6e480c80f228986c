/* OpenAI-ES (Salimans, Ho, Chen, Sidor, Sutskever 2017, "Evolution Strategies as a
 * Scalable Alternative to Reinforcement Learning"): fixed isotropic sigma, antithetic
 * pairs, centred-rank shaping (or z-scores), gradient (1 / (P sigma)) sum_i w_i eps_i fed to Adam or
 * SGD with L2 weight decay.
 *
 * Weight decay means what OpenAI's l2coeff means. Their gradient is (1 / P) sum_i w_i eps_i,
 * without the 1/sigma here, and they step along (that - l2coeff * theta). This gradient is theirs
 * over sigma, so the decay is divided by sigma too: the step follows the same direction, and the
 * coefficient is not 1/sigma (50x at sigma 0.02) weaker than the same number in their code.
 *
 * Defaults follow the authors' es_distributed code (noise_stdev 0.02, Adam stepsize 0.01,
 * beta1 0.9, beta2 0.999, eps 1e-8, l2coeff 0.005). Their population was thousands of
 * workers; the default here is CMA's 4 + 3 ln n rounded up to even, to be raised freely. */
#include "es/strategy.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    esm_optim_state opt;
} oes_state;

static int default_popsize(size_t dim)
{
    int p = 4 + (int)floor(3 * log((double)dim));
    return p + (p & 1);
}

static void oes_defaults(esm_es_config *c)
{
    c->popsize = default_popsize(c->dim ? c->dim : 1);
    c->antithetic = 1;
    c->shaping = ESM_ES_SHAPING_RANKS;
    c->sigma0 = 0.02f;
    c->optim = (esm_optim_config){.kind = ESM_OPTIM_ADAM, .lr = 0.01f, .momentum = 0.9f, .beta1 = 0.9f,
                                  .beta2 = 0.999f, .eps = 1e-8f, .max_speed = 0.02f, .weight_decay = 0.005f};
}

static esm_status oes_validate(const esm_es_config *c, esm_err *err)
{
    esm_status s = esm_es_shaping_validate(c->shaping, err);
    return s != ESM_OK ? s : esm_optim_validate(&c->optim, err);
}

static esm_status oes_create(esm_es *es, esm_err *err)
{
    oes_state *st = calloc(1, sizeof *st);
    if (!st)
        return esm_fail(err, ESM_ENOMEM, "openai-es state: out of memory");
    esm_status s = esm_optim_alloc(&st->opt, &es->cfg.optim, es->cfg.dim, err);
    if (s != ESM_OK) {
        free(st);
        return s;
    }
    es->st = st;
    return ESM_OK;
}

static void oes_scale(const esm_es *es, const float **diag, float *scalar)
{
    *diag = NULL;
    *scalar = es->cfg.sigma0;
}

esm_status esm_es_openai_gradient(const esm_es *es, const esm_es_ranking *rk, const esm_es_shard *sh, float *g,
                                  esm_err *err)
{
    int p = rk->popsize;
    float *w = malloc((size_t)p * sizeof *w);
    if (!w)
        return esm_fail(err, ESM_ENOMEM, "openai-es weights of %d members: out of memory", p);
    esm_es_shape(es->cfg.shaping, rk, w);
    esm_status s = esm_es_weighted_noise(es, sh, w, 1.0 / ((double)p * es->cfg.sigma0), g, err);
    free(w);
    return s;
}

static esm_status oes_tell(esm_es *es, const esm_es_ranking *rk, const esm_es_shard *sh, esm_es_report *rep,
                           esm_err *err)
{
    oes_state *st = es->st;
    size_t dim = es->cfg.dim;
    float *g = malloc(dim * sizeof *g);
    double *partial = malloc(esm_es_nchunks(dim) * sizeof *partial);
    esm_status s = g && partial ? esm_es_openai_gradient(es, rk, sh, g, err)
                                : esm_fail(err, ESM_ENOMEM, "openai-es tell workspace for dim %zu: out of memory", dim);
    if (s == ESM_OK) {
        esm_optim_config oc = es->cfg.optim;
        oc.weight_decay = (float)(oc.weight_decay / es->cfg.sigma0);
        rep->update_norm = esm_optim_step(&oc, &st->opt, es->mean, g, dim, partial);
        rep->sigma_mean = es->cfg.sigma0;
    }
    free(g), free(partial);
    return s;
}

static size_t oes_state_size(const esm_es *es)
{
    return esm_optim_state_size(&es->cfg.optim, es->cfg.dim);
}

static void oes_save(const esm_es *es, esm_writer *w)
{
    const oes_state *st = es->st;
    esm_optim_save(&st->opt, &es->cfg.optim, es->cfg.dim, w);
}

static void oes_load(esm_es *es, esm_reader *r)
{
    oes_state *st = es->st;
    esm_optim_load(&st->opt, &es->cfg.optim, es->cfg.dim, r);
}

static void oes_destroy(esm_es *es)
{
    oes_state *st = es->st;
    esm_optim_release(&st->opt);
    free(st);
}

const esm_es_strategy esm_es_openai_es = {
    .name = "openai-es", .caps = ESM_ES_CAN_SCHEDULE_SIGMA | ESM_ES_CAN_SHAPE | ESM_ES_CAN_ESTIMATE,
    .defaults = oes_defaults, .validate = oes_validate, .create = oes_create,
    .scale = oes_scale, .tell = oes_tell, .state_size = oes_state_size, .save = oes_save,
    .load = oes_load, .destroy = oes_destroy,
};
