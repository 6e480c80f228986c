/* Fitness shaping: maps the ranking (or the values) of one generation to member weights.
 * Only finite values ever reach a weight; non-finite members are simply the worst ranks. */
#include "es/strategy.h"

#include <assert.h>
#include <math.h>
#include <string.h>

static int tied(float a, float b)
{
    return (!isfinite(a) && !isfinite(b)) || a == b;
}

void esm_es_centered_ranks(const esm_es_ranking *rk, float *w)
{
    /* Salimans et al. 2017: ranks scaled to [-0.5, 0.5], best +0.5. Tied members (all
     * non-finite ones included) share their average rank, so equal fitness carries no
     * signal instead of one invented by the tie-break order. */
    int p = rk->popsize;
    assert(p >= 2);
    for (int r = 0; r < p;) {
        int e = r + 1;
        while (e < p && tied(rk->fitness[rk->order[r]], rk->fitness[rk->order[e]]))
            e++;
        double avg = (r + e - 1) / 2.0;
        for (int q = r; q < e; q++)
            w[rk->order[q]] = (float)((p - 1 - avg) / (p - 1) - 0.5);
        r = e;
    }
}

void esm_es_standardised(const esm_es_ranking *rk, float *w)
{
    /* Non-finite members take the worst finite value, so they pull like the worst member
     * without their value ever entering the arithmetic. */
    int p = rk->popsize;
    double worst = 0;
    for (int r = p - 1; r >= 0; r--) {
        float f = rk->fitness[rk->order[r]];
        if (isfinite(f)) {
            worst = f;
            break;
        }
    }
    double sum = 0, sq = 0;
    for (int i = 0; i < p; i++) {
        double f = isfinite(rk->fitness[i]) ? rk->fitness[i] : worst;
        sum += f;
        sq += f * f;
    }
    double mean = sum / p, var = sq / p - mean * mean;
    double sd = var > 0 ? sqrt(var) : 0;
    for (int i = 0; i < p; i++) {
        double f = isfinite(rk->fitness[i]) ? rk->fitness[i] : worst;
        w[i] = sd > 1e-30 ? (float)((f - mean) / sd) : 0.0f;
    }
}

static const char *const SHAPING_NAMES[] = {"ranks", "zscore"};

const char *esm_es_shaping_name(int shaping)
{
    return shaping == ESM_ES_SHAPING_RANKS || shaping == ESM_ES_SHAPING_ZSCORE ? SHAPING_NAMES[shaping] : "unknown";
}

int esm_es_shaping_parse(const char *name)
{
    for (int i = 0; i < 2; i++)
        if (name && !strcmp(name, SHAPING_NAMES[i]))
            return i;
    return -1;
}

void esm_es_shape(esm_es_shaping how, const esm_es_ranking *rk, float *w)
{
    if (how == ESM_ES_SHAPING_ZSCORE)
        esm_es_standardised(rk, w);
    else
        esm_es_centered_ranks(rk, w);
}

esm_status esm_es_shaping_validate(esm_es_shaping how, esm_err *err)
{
    if (how != ESM_ES_SHAPING_RANKS && how != ESM_ES_SHAPING_ZSCORE)
        return esm_fail_field(err, ESM_EINVAL, "shaping", "shaping %d is unknown: use ranks (%d) or zscore (%d)",
                              (int)how, ESM_ES_SHAPING_RANKS, ESM_ES_SHAPING_ZSCORE);
    return ESM_OK;
}

void esm_es_nes_utilities(const esm_es_ranking *rk, float *w)
{
    /* Wierstra et al. 2014 (JMLR), eq. in sec. 3.1: u_k = max(0, ln(lambda/2 + 1) - ln k)
     * / sum_j max(0, ...) - 1/lambda, k = 1 for the best. They sum to zero. */
    int p = rk->popsize;
    double top = log(p / 2.0 + 1.0), norm = 0;
    for (int k = 1; k <= p; k++)
        norm += fmax(0.0, top - log(k));
    for (int r = 0; r < p; r++)
        w[rk->order[r]] = (float)(fmax(0.0, top - log(r + 1.0)) / norm - 1.0 / p);
}

double esm_es_cma_weights(int popsize, int mu, float *w_by_rank)
{
    /* Hansen's tutorial (2016), eq. 49 restricted to positive weights:
     * w_k = ln(mu + 1/2) - ln k, normalised to sum 1. */
    assert(mu >= 1 && mu <= popsize);
    double sum = 0, sq = 0;
    for (int k = 1; k <= mu; k++)
        sum += log(mu + 0.5) - log(k);
    for (int k = 1; k <= popsize; k++) {
        double v = k <= mu ? (log(mu + 0.5) - log(k)) / sum : 0.0;
        w_by_rank[k - 1] = (float)v;
        sq += v * v;
    }
    return 1.0 / sq;
}
