/* Centre optimisers shared by openai-es and pgpe. Each works chunk by chunk and reduces
 * through per-chunk partials, so results do not depend on the thread count. */
#include "es/strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

esm_status esm_optim_validate(const esm_optim_config *oc, esm_err *err)
{
    if (!(oc->lr > 0) || !isfinite(oc->lr))
        return esm_fail(err, ESM_EINVAL, "optim.lr = %g: the learning rate must be a positive finite number", oc->lr);
    if (!(oc->weight_decay >= 0))
        return esm_fail(err, ESM_EINVAL, "optim.weight_decay = %g: must be >= 0 (0 disables it)", oc->weight_decay);
    switch (oc->kind) {
    case ESM_OPTIM_SGD:
    case ESM_OPTIM_CLIPUP:
        if (!(oc->momentum >= 0 && oc->momentum < 1))
            return esm_fail(err, ESM_EINVAL, "optim.momentum = %g: must be in [0, 1)", oc->momentum);
        if (oc->kind == ESM_OPTIM_CLIPUP && !(oc->max_speed > 0))
            return esm_fail(err, ESM_EINVAL, "optim.max_speed = %g: ClipUp needs a positive speed cap (try 2 * lr)", oc->max_speed);
        return ESM_OK;
    case ESM_OPTIM_ADAM:
        if (!(oc->beta1 >= 0 && oc->beta1 < 1) || !(oc->beta2 >= 0 && oc->beta2 < 1))
            return esm_fail(err, ESM_EINVAL, "optim.beta1 = %g, beta2 = %g: Adam needs both in [0, 1) (try 0.9, 0.999)", oc->beta1, oc->beta2);
        if (!(oc->eps > 0))
            return esm_fail(err, ESM_EINVAL, "optim.eps = %g: Adam needs eps > 0 (try 1e-8)", oc->eps);
        return ESM_OK;
    }
    return esm_fail(err, ESM_EINVAL, "optim.kind = %d: use ESM_OPTIM_SGD, ESM_OPTIM_ADAM or ESM_OPTIM_CLIPUP", (int)oc->kind);
}

static int n_arrays(const esm_optim_config *oc)
{
    return oc->kind == ESM_OPTIM_ADAM ? 2 : 1;
}

esm_status esm_optim_alloc(esm_optim_state *os, const esm_optim_config *oc, size_t dim, esm_err *err)
{
    memset(os, 0, sizeof *os);
    os->m = calloc(dim, sizeof *os->m);
    if (n_arrays(oc) == 2)
        os->v = calloc(dim, sizeof *os->v);
    if (!os->m || (n_arrays(oc) == 2 && !os->v)) {
        esm_optim_release(os);
        return esm_fail(err, ESM_ENOMEM, "optimiser state for dim %zu: out of memory", dim);
    }
    return ESM_OK;
}

void esm_optim_release(esm_optim_state *os)
{
    free(os->m);
    free(os->v);
    os->m = os->v = NULL;
}

size_t esm_optim_state_size(const esm_optim_config *oc, size_t dim)
{
    return sizeof(uint64_t) + (size_t)n_arrays(oc) * dim * sizeof(float);
}

void esm_optim_save(const esm_optim_state *os, const esm_optim_config *oc, size_t dim, esm_writer *w)
{
    esm_write_u64(w, os->t);
    esm_write_floats(w, os->m, dim);
    if (n_arrays(oc) == 2)
        esm_write_floats(w, os->v, dim);
}

void esm_optim_load(esm_optim_state *os, const esm_optim_config *oc, size_t dim, esm_reader *r)
{
    os->t = esm_get_u64(r);
    esm_get_floats(r, os->m, dim);
    if (n_arrays(oc) == 2)
        esm_get_floats(r, os->v, dim);
}

/* Applies the step to theta[b..e); returns the squared norm of the change. */
static double chunk_step(const esm_optim_config *oc, esm_optim_state *os, float *theta, const float *g,
                         size_t b, size_t e, float vscale, double bc1, double bc2)
{
    double sq = 0;
    for (size_t j = b; j < e; j++) {
        float d;
        if (oc->kind == ESM_OPTIM_ADAM) {
            os->m[j] = oc->beta1 * os->m[j] + (1 - oc->beta1) * g[j];
            os->v[j] = oc->beta2 * os->v[j] + (1 - oc->beta2) * g[j] * g[j];
            d = (float)(oc->lr * (os->m[j] / bc1) / (sqrt(os->v[j] / bc2) + oc->eps));
        } else if (oc->kind == ESM_OPTIM_SGD) {
            os->m[j] = oc->momentum * os->m[j] + oc->lr * g[j];
            d = os->m[j];
        } else {
            d = os->m[j] * vscale; /* ClipUp: velocity was updated in a first pass */
            os->m[j] = d;
        }
        theta[j] += d;
        sq += (double)d * d;
    }
    return sq;
}

/* ClipUp's first pass: v = momentum * v + lr * g / |g|; returns |v|^2 per chunk. */
static double chunk_clipup_velocity(const esm_optim_config *oc, esm_optim_state *os, const float *g,
                                    size_t b, size_t e, float gscale)
{
    double sq = 0;
    for (size_t j = b; j < e; j++) {
        os->m[j] = oc->momentum * os->m[j] + oc->lr * gscale * g[j];
        sq += (double)os->m[j] * os->m[j];
    }
    return sq;
}

#define CHUNK_LOOP(dim, body)                                                                  \
    do {                                                                                       \
        long nch_ = (long)esm_es_nchunks(dim);                                                 \
        _Pragma("omp parallel for schedule(static)")                                           \
        for (long c = 0; c < nch_; c++) {                                                      \
            size_t b = (size_t)c * ESM_ES_CHUNK;                                               \
            size_t e = b + ESM_ES_CHUNK < (dim) ? b + ESM_ES_CHUNK : (dim);                    \
            body;                                                                              \
        }                                                                                      \
    } while (0)

double esm_optim_step(const esm_optim_config *oc, esm_optim_state *os, float *theta, float *g,
                      size_t dim, double *partial)
{
    size_t nch = esm_es_nchunks(dim);
    if (oc->weight_decay > 0)
        CHUNK_LOOP(dim, for (size_t j = b; j < e; j++) g[j] -= oc->weight_decay * theta[j]);
    os->t++;
    double bc1 = 1 - pow(oc->beta1, (double)os->t), bc2 = 1 - pow(oc->beta2, (double)os->t);
    float vscale = 1;
    if (oc->kind == ESM_OPTIM_CLIPUP) {
        double gn = sqrt(esm_es_sumsq(g, dim, partial));
        float gscale = gn > 0 ? (float)(1.0 / gn) : 0.0f;
        CHUNK_LOOP(dim, partial[c] = chunk_clipup_velocity(oc, os, g, b, e, gscale));
        double vn = sqrt(esm_es_sum_ordered(partial, nch));
        if (vn > oc->max_speed)
            vscale = (float)(oc->max_speed / vn);
    }
    CHUNK_LOOP(dim, partial[c] = chunk_step(oc, os, theta, g, b, e, vscale, bc1, bc2));
    return sqrt(esm_es_sum_ordered(partial, nch));
}
