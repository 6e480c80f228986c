/* sep-CMA-ES (Ros & Hansen 2008, "A simple modification in CMA-ES achieving linear time
 * and space complexity"): CMA-ES with a diagonal covariance C = diag(c), so state and work
 * are O(n). Member: x = m + sigma * D z with D = sqrt(c). Maximises fitness.
 *
 * Defaults: lambda = 4 + floor(3 ln n), mu = floor(lambda / 2), w_k ∝ ln(mu + 1/2) - ln k,
 * c_sigma = (mu_eff + 2) / (n + mu_eff + 5), d_sigma = 1 + 2 max(0, sqrt((mu_eff - 1) /
 * (n + 1)) - 1) + c_sigma (Hansen's tutorial 2016); c_c = 4 / (n + 4) and the separable
 * covariance rate c_cov' = min(1, (n + 2) / 3 * c_cov), c_cov being CMA-ES's rate with
 * mu_cov = mu_eff (Ros & Hansen 2008, sec. 2), split as c_1 = c_cov' / mu_cov and
 * c_mu = c_cov' (1 - 1 / mu_cov). Recombination weights break fitness ties by index. */
#include "es/strategy.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    double sigma;
    float *c, *d, *ps, *pc;      /* [dim] each: diag(C), sqrt(c), evolution paths */
    float *w_rank;               /* [popsize] recombination weights by rank */
    int mu;
    double mueff, cs, ds, cc, c1, cmu, chin;
} sep_state;

static void sep_defaults(esm_es_config *c)
{
    c->popsize = 4 + (int)floor(3 * log((double)(c->dim ? c->dim : 1)));
    c->antithetic = 0;
    c->sigma0 = 0.5f;
    c->mean_lr = 1.0f;
}

static esm_status sep_validate(const esm_es_config *c, esm_err *err)
{
    if (!(c->mean_lr > 0 && c->mean_lr <= 1))
        return esm_fail(err, ESM_EINVAL, "mean_lr = %g: sep-cma's c_m must be in (0, 1] (default 1)", c->mean_lr);
    return ESM_OK;
}

static void sep_destroy(esm_es *es)
{
    sep_state *st = es->st;
    if (!st)
        return;
    free(st->c), free(st->d), free(st->ps), free(st->pc), free(st->w_rank);
    free(st);
    es->st = NULL;
}

static void sep_constants(sep_state *st, size_t dim, int popsize)
{
    double n = (double)dim;
    st->mu = popsize / 2;
    st->mueff = esm_es_cma_weights(popsize, st->mu, st->w_rank);
    double me = st->mueff;
    st->cs = (me + 2) / (n + me + 5);
    st->ds = 1 + 2 * fmax(0, sqrt((me - 1) / (n + 1)) - 1) + st->cs;
    st->cc = 4 / (n + 4);
    double ccov = (1 / me) * 2 / ((n + 1.41421356237309504880) * (n + 1.41421356237309504880)) +
                  (1 - 1 / me) * fmin(1, (2 * me - 1) / ((n + 2) * (n + 2) + me));
    double csep = fmin(1, (n + 2) / 3 * ccov);
    st->c1 = csep / me;
    st->cmu = csep * (1 - 1 / me);
    st->chin = sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
}

static esm_status sep_create(esm_es *es, esm_err *err)
{
    size_t dim = es->cfg.dim;
    sep_state *st = calloc(1, sizeof *st);
    if (!st)
        return esm_fail(err, ESM_ENOMEM, "sep-cma state: out of memory");
    es->st = st;
    st->c = malloc(dim * sizeof(float));
    st->d = malloc(dim * sizeof(float));
    st->ps = calloc(dim, sizeof(float));
    st->pc = calloc(dim, sizeof(float));
    st->w_rank = malloc((size_t)es->cfg.popsize * sizeof(float));
    if (!st->c || !st->d || !st->ps || !st->pc || !st->w_rank) {
        sep_destroy(es);
        return esm_fail(err, ESM_ENOMEM, "sep-cma state of dim %zu: out of memory", dim);
    }
    for (size_t j = 0; j < dim; j++)
        st->c[j] = st->d[j] = 1.0f;
    st->sigma = es->cfg.sigma0;
    sep_constants(st, dim, es->cfg.popsize);
    return ESM_OK;
}

static void sep_scale(const esm_es *es, const float **diag, float *scalar)
{
    const sep_state *st = es->st;
    *diag = st->d;
    *scalar = (float)st->sigma;
}

/* Mean and sigma path for one chunk; returns |ps|^2 over the chunk. */
static double chunk_mean_ps(esm_es *es, sep_state *st, const esm_es_sums *S, size_t b, size_t n, float *zw,
                            float *zz, double *dsq)
{
    double buf1[ESM_ES_CHUNK], buf2[ESM_ES_CHUNK], psq = 0, msq = 0;
    const double *s1, *s2;
    esm_es_sums_get(S, b, n, buf1, buf2, &s1, &s2);
    double k = sqrt(st->cs * (2 - st->cs) * st->mueff), step = es->cfg.mean_lr * st->sigma;
    for (size_t j = 0; j < n; j++) {
        size_t q = b + j;
        zw[q] = (float)s1[j];
        zz[q] = (float)s2[j];
        float dm = (float)(step * st->d[q] * s1[j]);
        es->mean[q] += dm;
        msq += (double)dm * dm;
        st->ps[q] = (float)((1 - st->cs) * st->ps[q] + k * s1[j]);
        psq += (double)st->ps[q] * st->ps[q];
    }
    *dsq = msq;
    return psq;
}

/* Covariance path and diagonal for one chunk; returns the sum of the new D. */
static double chunk_cov(sep_state *st, const float *zw, const float *zz, size_t b, size_t n, int hs)
{
    double k = hs * sqrt(st->cc * (2 - st->cc) * st->mueff);
    double lost = (1 - hs) * st->cc * (2 - st->cc), dsum = 0;
    for (size_t q = b; q < b + n; q++) {
        double c = st->c[q];
        st->pc[q] = (float)((1 - st->cc) * st->pc[q] + k * st->d[q] * zw[q]);
        c = (1 - st->c1 - st->cmu) * c + st->c1 * ((double)st->pc[q] * st->pc[q] + lost * c) +
            st->cmu * c * zz[q];
        st->c[q] = (float)c;
        /* From the stored float, so that a checkpoint (which keeps only c) restores D exactly. */
        st->d[q] = (float)sqrt((double)st->c[q]);
        dsum += st->d[q];
    }
    return dsum;
}

static esm_status sep_tell(esm_es *es, const esm_es_ranking *rk, const esm_es_shard *sh, esm_es_report *rep,
                           esm_err *err)
{
    sep_state *st = es->st;
    size_t dim = es->cfg.dim, nch = esm_es_nchunks(dim);
    int p = rk->popsize;
    float *w = malloc((size_t)p * sizeof *w);
    float *zw = malloc(2 * dim * sizeof *zw);
    double *part = malloc(2 * nch * sizeof *part);
    if (!w || !zw || !part) {
        free(w), free(zw), free(part);
        return esm_fail(err, ESM_ENOMEM, "sep-cma tell workspace for dim %zu: out of memory", dim);
    }
    float *zz = zw + dim;
    double *mpart = part + nch;
    for (int i = 0; i < p; i++)
        w[i] = st->w_rank[rk->rank[i]];
    esm_es_sums S;
    esm_status s = esm_es_sums_open(&S, es, sh, w, w, err);
    if (s != ESM_OK) {
        free(w), free(zw), free(part);
        return s;
    }
#pragma omp parallel for schedule(static)
    for (long ch = 0; ch < (long)nch; ch++) {
        size_t b = (size_t)ch * ESM_ES_CHUNK, n = dim - b < ESM_ES_CHUNK ? dim - b : ESM_ES_CHUNK;
        part[ch] = chunk_mean_ps(es, st, &S, b, n, zw, zz, &mpart[ch]);
    }
    double psn = sqrt(esm_es_sum_ordered(part, nch));
    rep->update_norm = sqrt(esm_es_sum_ordered(mpart, nch));
    double gens = 2.0 * (es->gen + 1.0);
    int hs = psn / sqrt(1 - pow(1 - st->cs, gens)) < (1.4 + 2 / (dim + 1.0)) * st->chin;
#pragma omp parallel for schedule(static)
    for (long ch = 0; ch < (long)nch; ch++) {
        size_t b = (size_t)ch * ESM_ES_CHUNK, n = dim - b < ESM_ES_CHUNK ? dim - b : ESM_ES_CHUNK;
        part[ch] = chunk_cov(st, zw, zz, b, n, hs);
    }
    st->sigma *= exp(st->cs / st->ds * (psn / st->chin - 1));
    rep->sigma_mean = st->sigma * esm_es_sum_ordered(part, nch) / dim;
    esm_es_sums_close(&S);
    free(w), free(zw), free(part);
    return ESM_OK;
}

static size_t sep_state_size(const esm_es *es)
{
    return sizeof(double) + 3 * es->cfg.dim * sizeof(float);
}

static void sep_save(const esm_es *es, esm_writer *w)
{
    const sep_state *st = es->st;
    esm_write_bytes(w, &st->sigma, sizeof st->sigma);
    esm_write_floats(w, st->c, es->cfg.dim);
    esm_write_floats(w, st->ps, es->cfg.dim);
    esm_write_floats(w, st->pc, es->cfg.dim);
}

static void sep_load(esm_es *es, esm_reader *r)
{
    sep_state *st = es->st;
    esm_get_bytes(r, &st->sigma, sizeof st->sigma);
    esm_get_floats(r, st->c, es->cfg.dim);
    esm_get_floats(r, st->ps, es->cfg.dim);
    esm_get_floats(r, st->pc, es->cfg.dim);
    /* D is sqrt(c) exactly as tell computes it, so it need not be stored. */
    for (size_t j = 0; j < es->cfg.dim; j++)
        st->d[j] = (float)sqrt((double)st->c[j]);
}

const esm_es_strategy esm_es_sep_cma = {
    .name = "sep-cma", .defaults = sep_defaults, .validate = sep_validate, .create = sep_create,
    .scale = sep_scale, .tell = sep_tell, .state_size = sep_state_size, .save = sep_save,
    .load = sep_load, .destroy = sep_destroy,
};
