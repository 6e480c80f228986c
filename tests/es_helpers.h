/* Shared pieces of the ES tests: benchmark objectives (minimised; the ES maximises their
 * negation) and a loop that plays the external parallel evaluator. */
#ifndef ESM_TEST_ES_HELPERS_H
#define ESM_TEST_ES_HELPERS_H

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"

/* Under ASan, RSS includes shadow memory, so memory-growth checks are skipped there. */
#if defined(__SANITIZE_ADDRESS__)
#define ES_SANITIZED 1
#else
#define ES_SANITIZED 0
#endif

typedef double (*es_objective)(const float *x, size_t n);

static inline double es_sphere(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

static inline double es_rosenbrock(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        double a = x[i + 1] - (double)x[i] * x[i], b = 1.0 - x[i];
        s += 100 * a * a + b * b;
    }
    return s;
}

static inline double es_rastrigin(const float *x, size_t n)
{
    double s = 10.0 * n;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i] - 10 * cos(6.283185307179586 * x[i]);
    return s;
}

/* Evaluates every member (in parallel, as an outside evaluator would) into fitness = -f. */
static inline void es_evaluate(const esm_es *es, es_objective f, float *fitness)
{
    int p = esm_es_popsize(es);
    size_t dim = esm_es_dim(es);
#pragma omp parallel
    {
        float *theta = malloc(dim * sizeof *theta);
#pragma omp for schedule(static)
        for (int i = 0; i < p; i++) {
            esm_es_member(es, i, theta);
            fitness[i] = (float)-f(theta, dim);
        }
        free(theta);
    }
}

/* Runs gens generations; returns the last tell's status. */
static inline esm_status es_run(esm_es *es, es_objective f, int gens, esm_err *err)
{
    float *fit = malloc((size_t)esm_es_popsize(es) * sizeof *fit);
    esm_status s = fit ? ESM_OK : ESM_ENOMEM;
    for (int g = 0; g < gens && s == ESM_OK; g++) {
        es_evaluate(es, f, fit);
        s = esm_es_tell(es, fit, NULL, err);
    }
    free(fit);
    return s;
}

/* A synthetic episode for ES members and the small net it feeds (1x12x12 images, width 8, depth
 * 2): Gaussian pixels keyed by seed, query i of class i / query. The images live in the struct,
 * up to ES_SYNTH_IMAGES each. */
enum { ES_SYNTH_IMAGES = 16, ES_SYNTH_PIXELS = 144 };
typedef struct {
    float sup[ES_SYNTH_IMAGES * ES_SYNTH_PIXELS], qry[ES_SYNTH_IMAGES * ES_SYNTH_PIXELS];
    int lab[ES_SYNTH_IMAGES];
    esm_episode ep;
    esm_net net;
} es_synth_episode;

static inline esm_status es_synth_episode_make(es_synth_episode *s, int way, int shot, int query, uint64_t seed,
                                               esm_err *err)
{
    assert(way * shot <= ES_SYNTH_IMAGES && way * query <= ES_SYNTH_IMAGES);
    esm_gauss_fill(seed, 0, 0, s->sup, (size_t)way * shot * ES_SYNTH_PIXELS);
    esm_gauss_fill(seed, 1, 0, s->qry, (size_t)way * query * ES_SYNTH_PIXELS);
    for (int i = 0; i < way * query; i++)
        s->lab[i] = i / query;
    s->ep = (esm_episode){.shape = {way, shot, query}, .image_size = ES_SYNTH_PIXELS, .support = s->sup,
                          .query = s->qry, .query_label = s->lab};
    esm_net_config nc = {1, 12, 12, 8, 2};
    return esm_net_init(&s->net, &nc, err);
}

/* A saved state in a fresh malloc'd buffer (NULL on failure); *len gets its size. */
static inline unsigned char *es_snapshot(const esm_es *es, size_t *len)
{
    *len = esm_es_state_size(es);
    unsigned char *buf = malloc(*len);
    if (buf && esm_es_save(es, buf, *len, NULL) != ESM_OK) {
        free(buf);
        return NULL;
    }
    return buf;
}

#endif
