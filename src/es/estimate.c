/* Gradient estimates of a generation without its step (es/estimate.h). They reuse the tell's own
 * pieces (ranking, shaping, weighted noise sums), so they are the numbers training follows. */
#include "es/estimate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "es/strategy.h"

typedef struct {
    const esm_es *es;
    float *g;
} estimate_ctx;

static esm_status openai_ranked(void *ctx, const esm_es_ranking *rk, const esm_es_shard *sh, esm_err *err)
{
    estimate_ctx *c = ctx;
    return esm_es_openai_gradient(c->es, rk, sh, c->g, err);
}

esm_status esm_es_gradient_estimate(const esm_es *es, const float *fitness, float *g, esm_err *err)
{
    if (!(es->vt->caps & ESM_ES_CAN_ESTIMATE))
        return esm_fail(err, ESM_EUNSUPPORTED, "gradient estimate of strategy '%s': only openai-es's is defined here "
                        "(create an openai-es object)", es->vt->name);
    int p = es->cfg.popsize, finite = 0;
    for (int i = 0; i < p; i++)
        finite += isfinite(fitness[i]) != 0;
    if (!finite)
        return esm_fail(err, ESM_ENONFINITE, "gradient estimate: all %d fitness values are NaN or infinite", p);
    return esm_es_ranked(fitness, p, es->cfg.dim, NULL, openai_ranked, &(estimate_ctx){es, g}, err);
}

esm_status esm_es_antithetic_gradient(const esm_es *es, const float *fitness, float *g, esm_err *err)
{
    int p = es->cfg.popsize;
    if (!es->cfg.antithetic)
        return esm_fail(err, ESM_EINVAL, "antithetic gradient: the population of %d is not sampled in antithetic pairs "
                        "(set antithetic = 1)", p);
    for (int i = 0; i < p; i++)
        if (!isfinite(fitness[i]))
            return esm_fail(err, ESM_ENONFINITE, "antithetic gradient: member %d's fitness is %g; every member must "
                            "be finite", i, (double)fitness[i]);
    float *a = malloc((size_t)p * sizeof *a);
    if (!a)
        return esm_fail(err, ESM_ENOMEM, "antithetic gradient of %d members: out of memory", p);
    /* Member 2k is x + s e_k, member 2k + 1 is x - s e_k: the pair's difference weighs e_k alone
     * (2 / P = 1 / K, the 1 / 2 of the central difference, and 1 / s below). */
    for (int k = 0; k + 1 < p; k += 2)
        a[k] = (fitness[k] - fitness[k + 1]) / (float)p, a[k + 1] = 0;
    const float *diag;
    float scalar;
    es->vt->scale(es, &diag, &scalar);
    esm_es_shard sh;
    esm_status s = esm_es_shard_open(&sh, es->cfg.dim, NULL, err);
    if (s == ESM_OK)
        s = esm_es_weighted_noise(es, &sh, a, 1.0 / scalar, g, err);
    esm_es_shard_close(&sh);
    free(a);
    for (size_t j = 0; s == ESM_OK && diag && j < es->cfg.dim; j++)
        g[j] /= diag[j];
    return s;
}

double esm_cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t j = 0; j < n; j++) {
        ab += (double)a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += (double)b[j] * b[j];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

double esm_norm(const float *a, size_t n)
{
    double aa = 0;
    for (size_t j = 0; j < n; j++)
        aa += (double)a[j] * a[j];
    return sqrt(aa);
}
