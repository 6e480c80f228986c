/* SNES, separable natural evolution strategies (Schaul, Glasmachers, Schmidhuber 2011,
 * "High dimensions and heavy tails for natural evolution strategies"; Wierstra et al. 2014,
 * JMLR, Algorithm 6). Per-coordinate sigma, rank-based utilities:
 *   mu_j    += eta_mu * sigma_j * sum_k u_k z_kj
 *   sigma_j *= exp(eta_sigma / 2 * sum_k u_k (z_kj^2 - 1))
 * Defaults are the paper's: popsize 4 + floor(3 ln d), eta_mu = 1,
 * eta_sigma = (3 + ln d) / (5 sqrt d), no mirrored sampling. */
#include "es/strategy.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float *sigma; /* [dim] */
} snes_state;

static void snes_defaults(esm_es_config *c)
{
    double d = (double)(c->dim ? c->dim : 1);
    c->popsize = 4 + (int)floor(3 * log(d));
    c->antithetic = 0;
    c->sigma0 = 1.0f;
    c->mean_lr = 1.0f;
    c->sigma_lr = (float)((3 + log(d)) / (5 * sqrt(d)));
}

static esm_status snes_validate(const esm_es_config *c, esm_err *err)
{
    if (!(c->mean_lr > 0))
        return esm_fail(err, ESM_EINVAL, "mean_lr = %g: snes needs eta_mu > 0 (default 1)", c->mean_lr);
    if (!(c->sigma_lr > 0))
        return esm_fail(err, ESM_EINVAL, "sigma_lr = %g: snes needs eta_sigma > 0 (default (3 + ln d) / (5 sqrt d))", c->sigma_lr);
    return ESM_OK;
}

static void snes_destroy(esm_es *es)
{
    snes_state *st = es->st;
    if (st)
        free(st->sigma);
    free(st);
    es->st = NULL;
}

static esm_status snes_create(esm_es *es, esm_err *err)
{
    snes_state *st = calloc(1, sizeof *st);
    if (st)
        st->sigma = malloc(es->cfg.dim * sizeof *st->sigma);
    if (!st || !st->sigma) {
        free(st);
        return esm_fail(err, ESM_ENOMEM, "snes state of dim %zu: out of memory", es->cfg.dim);
    }
    for (size_t j = 0; j < es->cfg.dim; j++)
        st->sigma[j] = es->cfg.sigma0;
    es->st = st;
    return ESM_OK;
}

static void snes_scale(const esm_es *es, const float **diag, float *scalar)
{
    const snes_state *st = es->st;
    *diag = st->sigma;
    *scalar = 1.0f;
}

static esm_status snes_tell(esm_es *es, const esm_es_ranking *rk, const esm_es_shard *sh, esm_es_report *rep,
                            esm_err *err)
{
    snes_state *st = es->st;
    const esm_es_config *cfg = &es->cfg;
    size_t dim = cfg->dim, nch = esm_es_nchunks(dim);
    int p = rk->popsize;
    float *u = malloc((size_t)p * sizeof *u);
    double *partial = malloc(2 * nch * sizeof *partial);
    if (!u || !partial) {
        free(u), free(partial);
        return esm_fail(err, ESM_ENOMEM, "snes tell workspace: out of memory");
    }
    esm_es_nes_utilities(rk, u);
    esm_es_sums S;
    esm_status s = esm_es_sums_open(&S, es, sh, u, u, err);
    if (s != ESM_OK) {
        free(u), free(partial);
        return s;
    }
    double usum = 0;
    for (int i = 0; i < p; i++)
        usum += u[i];
    double *sig_part = partial + nch;
#pragma omp parallel for schedule(static)
    for (long ch = 0; ch < (long)nch; ch++) {
        size_t b = (size_t)ch * ESM_ES_CHUNK, n = dim - b < ESM_ES_CHUNK ? dim - b : ESM_ES_CHUNK;
        double buf1[ESM_ES_CHUNK], buf2[ESM_ES_CHUNK], dsq = 0, ssum = 0;
        const double *s1, *s2;
        esm_es_sums_get(&S, b, n, buf1, buf2, &s1, &s2);
        for (size_t j = 0; j < n; j++) {
            float *sg = &st->sigma[b + j];
            float d = (float)(cfg->mean_lr * *sg * s1[j]);
            es->mean[b + j] += d;
            dsq += (double)d * d;
            *sg = (float)(*sg * exp(0.5 * cfg->sigma_lr * (s2[j] - usum)));
            ssum += *sg;
        }
        partial[ch] = dsq;
        sig_part[ch] = ssum;
    }
    rep->update_norm = sqrt(esm_es_sum_ordered(partial, nch));
    rep->sigma_mean = esm_es_sum_ordered(sig_part, nch) / dim;
    esm_es_sums_close(&S);
    free(u), free(partial);
    return ESM_OK;
}

static size_t snes_state_size(const esm_es *es)
{
    return es->cfg.dim * sizeof(float);
}

static void snes_save(const esm_es *es, esm_writer *w)
{
    const snes_state *st = es->st;
    esm_write_floats(w, st->sigma, es->cfg.dim);
}

static void snes_load(esm_es *es, esm_reader *r)
{
    snes_state *st = es->st;
    esm_get_floats(r, st->sigma, es->cfg.dim);
}

const esm_es_strategy esm_es_snes = {
    .name = "snes", .defaults = snes_defaults, .validate = snes_validate, .create = snes_create,
    .scale = snes_scale, .tell = snes_tell, .state_size = snes_state_size, .save = snes_save,
    .load = snes_load, .destroy = snes_destroy,
};
