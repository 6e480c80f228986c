/* PGPE (Sehnke, Osendorfer, Rueckstiess, Graves, Peters, Schmidhuber 2010, "Parameter-
 * exploring policy gradients") with symmetric sampling and per-parameter sigma adaptation.
 * With mirrored pairs (eps, -eps) and shaped fitness u:
 *   grad_mu_j    = sigma_j / P * sum_i u_i e_ij             (= (1/K) sum_k eps_k (u+ - u-) / 2)
 *   grad_sigma_j = sigma_j / P * sum_i (u_i - mean u) (e_ij^2 - 1)
 * (e the standard noise; eps = sigma e). The centre follows an optimiser, ClipUp by
 * default (Toklu, Liskowski, Srivastava 2020, "ClipUp"); sigma takes a plain gradient step
 * clamped to a relative change of sigma_max_change, as in their pgpelib.
 *
 * Defaults (ClipUp paper / pgpelib): centred ranks, ClipUp with max_speed 0.15 and
 * lr = max_speed / 2, momentum 0.9, sigma_lr 0.1, sigma_max_change 0.2; sigma0 0.1 and
 * popsize 4 + 3 ln n rounded up to even are starting points to scale to the problem. */
#include "es/strategy.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float *sigma; /* [dim] */
    esm_optim_state opt;
} pgpe_state;

static void pgpe_defaults(esm_es_config *c)
{
    int p = 4 + (int)floor(3 * log((double)(c->dim ? c->dim : 1)));
    c->popsize = p + (p & 1);
    c->antithetic = 1;
    c->sigma0 = 0.1f;
    c->optim = (esm_optim_config){.kind = ESM_OPTIM_CLIPUP, .lr = 0.075f, .momentum = 0.9f, .beta1 = 0.9f,
                                  .beta2 = 0.999f, .eps = 1e-8f, .max_speed = 0.15f, .weight_decay = 0};
    c->sigma_lr = 0.1f;
    c->sigma_max_change = 0.2f;
    c->shaping = ESM_ES_SHAPING_RANKS;
}

static esm_status pgpe_validate(const esm_es_config *c, esm_err *err)
{
    if (!(c->sigma_lr > 0))
        return esm_fail(err, ESM_EINVAL, "sigma_lr = %g: pgpe needs a positive sigma learning rate (default 0.1)", c->sigma_lr);
    if (!(c->sigma_max_change > 0 && c->sigma_max_change < 1))
        return esm_fail(err, ESM_EINVAL, "sigma_max_change = %g: must be in (0, 1) (default 0.2)", c->sigma_max_change);
    esm_status s = esm_es_shaping_validate(c->shaping, err);
    return s != ESM_OK ? s : esm_optim_validate(&c->optim, err);
}

static void pgpe_destroy(esm_es *es)
{
    pgpe_state *st = es->st;
    if (!st)
        return;
    esm_optim_release(&st->opt);
    free(st->sigma);
    free(st);
    es->st = NULL;
}

static esm_status pgpe_create(esm_es *es, esm_err *err)
{
    size_t dim = es->cfg.dim;
    pgpe_state *st = calloc(1, sizeof *st);
    if (!st)
        return esm_fail(err, ESM_ENOMEM, "pgpe state: out of memory");
    es->st = st;
    st->sigma = malloc(dim * sizeof *st->sigma);
    if (!st->sigma) {
        pgpe_destroy(es);
        return esm_fail(err, ESM_ENOMEM, "pgpe sigma of dim %zu: out of memory", dim);
    }
    for (size_t j = 0; j < dim; j++)
        st->sigma[j] = es->cfg.sigma0;
    esm_status s = esm_optim_alloc(&st->opt, &es->cfg.optim, dim, err);
    if (s != ESM_OK)
        pgpe_destroy(es);
    return s;
}

static void pgpe_scale(const esm_es *es, const float **diag, float *scalar)
{
    const pgpe_state *st = es->st;
    *diag = st->sigma;
    *scalar = 1.0f;
}

static esm_status pgpe_tell(esm_es *es, const esm_es_ranking *rk, const esm_es_shard *sh, esm_es_report *rep,
                            esm_err *err)
{
    pgpe_state *st = es->st;
    const esm_es_config *cfg = &es->cfg;
    size_t dim = cfg->dim, nch = esm_es_nchunks(dim);
    int p = rk->popsize;
    float *u = malloc(2 * (size_t)p * sizeof *u);
    float *g = malloc(dim * sizeof *g);
    float *new_sigma = malloc(dim * sizeof *new_sigma);
    double *partial = malloc(nch * sizeof *partial);
    if (!u || !g || !new_sigma || !partial) {
        free(u), free(g), free(new_sigma), free(partial);
        return esm_fail(err, ESM_ENOMEM, "pgpe tell workspace for dim %zu: out of memory", dim);
    }
    float *uc = u + p; /* centred utilities */
    esm_es_shape(cfg->shaping, rk, u);
    double umean = 0, csum = 0;
    for (int i = 0; i < p; i++)
        umean += u[i];
    umean /= p;
    for (int i = 0; i < p; i++) {
        uc[i] = (float)(u[i] - umean);
        csum += uc[i];
    }
    esm_es_sums S;
    esm_status s = esm_es_sums_open(&S, es, sh, u, uc, err);
    if (s != ESM_OK) {
        free(u), free(g), free(new_sigma), free(partial);
        return s;
    }
#pragma omp parallel for schedule(static)
    for (long ch = 0; ch < (long)nch; ch++) {
        size_t b = (size_t)ch * ESM_ES_CHUNK, n = dim - b < ESM_ES_CHUNK ? dim - b : ESM_ES_CHUNK;
        double buf1[ESM_ES_CHUNK], buf2[ESM_ES_CHUNK];
        const double *s1, *s2;
        esm_es_sums_get(&S, b, n, buf1, buf2, &s1, &s2);
        for (size_t j = 0; j < n; j++) {
            double sg = st->sigma[b + j];
            g[b + j] = (float)(sg / p * s1[j]);
            double gs = sg / p * (s2[j] - csum);
            double lo = sg * (1 - cfg->sigma_max_change), hi = sg * (1 + cfg->sigma_max_change);
            new_sigma[b + j] = (float)fmin(hi, fmax(lo, sg + cfg->sigma_lr * gs));
        }
    }
    rep->update_norm = esm_optim_step(&cfg->optim, &st->opt, es->mean, g, dim, partial);
    double ssum = 0;
    for (size_t j = 0; j < dim; j++)
        ssum += st->sigma[j] = new_sigma[j];
    rep->sigma_mean = ssum / dim;
    esm_es_sums_close(&S);
    free(u), free(g), free(new_sigma), free(partial);
    return ESM_OK;
}

static size_t pgpe_state_size(const esm_es *es)
{
    return es->cfg.dim * sizeof(float) + esm_optim_state_size(&es->cfg.optim, es->cfg.dim);
}

static void pgpe_save(const esm_es *es, esm_writer *w)
{
    const pgpe_state *st = es->st;
    esm_write_floats(w, st->sigma, es->cfg.dim);
    esm_optim_save(&st->opt, &es->cfg.optim, es->cfg.dim, w);
}

static void pgpe_load(esm_es *es, esm_reader *r)
{
    pgpe_state *st = es->st;
    esm_get_floats(r, st->sigma, es->cfg.dim);
    esm_optim_load(&st->opt, &es->cfg.optim, es->cfg.dim, r);
}

const esm_es_strategy esm_es_pgpe = {
    .name = "pgpe", .caps = ESM_ES_CAN_SHAPE, .defaults = pgpe_defaults, .validate = pgpe_validate,
    .create = pgpe_create,
    .scale = pgpe_scale, .tell = pgpe_tell, .state_size = pgpe_state_size, .save = pgpe_save,
    .load = pgpe_load, .destroy = pgpe_destroy,
};
