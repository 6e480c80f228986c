/* The strategy interface and the pieces strategies share. Adding a strategy: write one
 * file that defines an esm_es_strategy and add it to the table in registry.c. */
#ifndef ESM_ES_STRATEGY_H
#define ESM_ES_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "core/bytes.h"
#include "esmeta/es.h"

/* Coordinates are processed in chunks of this many, whatever the thread count: the chunk
 * is the unit of parallel work and of every reduction, which is what makes tell()
 * bit-identical across thread counts. */
#define ESM_ES_CHUNK 1024


/* The part of the update this process does (shard.c): the noise sums of its coordinates
 * [b, e). Alone it owns everything and the gathers do nothing, so one process runs exactly the
 * code a sharded job runs. */
typedef struct {
    const esm_es_comm *comm; /* NULL: alone */
    size_t dim;
    size_t b, e;             /* owned coordinates [b, e) */
    int *counts;             /* [comm->size] scratch for the gathers */
} esm_es_shard;

/* Fitness ordering handed to a strategy: order[r] is the member at rank r, best first,
 * non-finite members last; rank[i] is member i's rank. */
typedef struct {
    int popsize;
    const float *fitness;
    const int *order;
    const int *rank;
} esm_es_ranking;

typedef struct esm_es_strategy {
    const char *name;
    unsigned caps; /* ESM_ES_CAN_* (esmeta/es.h) */
    void (*defaults)(esm_es_config *cfg);                       /* cfg->dim is set */
    esm_status (*validate)(const esm_es_config *cfg, esm_err *err);
    esm_status (*create)(esm_es *es, esm_err *err);             /* allocates es->st */
    /* member = mean + scalar * (diag ? diag[j] : 1) * noise */
    void (*scale)(const esm_es *es, const float **diag, float *scalar);
    /* Gets the noise sums through esm_es_sums (the one step split over sh's processes), then
     * updates the whole state, as every process does alike. Must not change the state when it
     * fails (allocate first). Fills update_norm and sigma_mean of rep. */
    esm_status (*tell)(esm_es *es, const esm_es_ranking *rk, const esm_es_shard *sh, esm_es_report *rep,
                       esm_err *err);
    size_t (*state_size)(const esm_es *es);                     /* payload bytes */
    void (*save)(const esm_es *es, esm_writer *w);
    void (*load)(esm_es *es, esm_reader *r);                      /* size already checked */
    void (*destroy)(esm_es *es);
} esm_es_strategy;

struct esm_es {
    const esm_es_strategy *vt;
    esm_es_config cfg;  /* cfg.strategy points at vt->name */
    uint32_t gen;
    float *mean;        /* [dim] */
    void *st;           /* the strategy's own state */
};

const esm_es_strategy *esm_es_find(const char *name);
/* "a, b, c" list of valid names into buf, for error messages. */
void esm_es_list_names(char *buf, size_t cap);

/* ---- chunked parallel helpers (chunks.c) ---- */
size_t esm_es_nchunks(size_t dim);
/* Sum of partial[0..n) in index order: the deterministic end of every reduction. */
double esm_es_sum_ordered(const double *partial, size_t n);
/* sum_j x[j]^2, by chunks, deterministic. */
double esm_es_sumsq(const float *x, size_t dim, double *partial);

/* ---- shards (shard.c) ---- */
/* Alone when comm is NULL or of size 1; shards hold at most 2^31 - 1 coordinates each. */
esm_status esm_es_shard_open(esm_es_shard *sh, size_t dim, const esm_es_comm *comm, esm_err *err);
void esm_es_shard_close(esm_es_shard *sh);
/* A tell's weighted noise sums, as esm_es_accumulate defines them, for every coordinate j:
 *   s1[j] = sum_i a[i] * e_i[j],  s2[j] = sum_i b[i] * e_i[j]^2   (b may be NULL: no s2)
 * Sharded, each process computes its shard's at open, the O(P * dim / processes) part of an
 * update, and gathers the others' (8 bytes a coordinate per sum, held for the tell); alone, they
 * are computed chunk by chunk as the tell asks, in O(chunk) memory. Each value is a sum over
 * members only, so it has the same bits wherever the shard boundaries fall. */
typedef struct {
    const esm_es *es;
    const float *a, *b;
    double *s1, *s2; /* [dim] each when sharded (s2 only with b); NULL alone */
} esm_es_sums;
esm_status esm_es_sums_open(esm_es_sums *S, const esm_es *es, const esm_es_shard *sh, const float *a, const float *b,
                            esm_err *err);
/* The sums of [begin, begin + n), n <= ESM_ES_CHUNK: *s1 and *s2 point into the gathered arrays
 * or into buf1 and buf2 (ESM_ES_CHUNK doubles each; buf2 may be NULL without b), filled now. */
void esm_es_sums_get(const esm_es_sums *S, size_t begin, size_t n, double *buf1, double *buf2, const double **s1,
                     const double **s2);
void esm_es_sums_close(esm_es_sums *S);
/* g[j] = k * sum_i a[i] * e_i[j] for every coordinate j (through esm_es_sums, so sharded like a
 * tell's sums): the weighted noise sum a gradient estimate is. */
esm_status esm_es_weighted_noise(const esm_es *es, const esm_es_shard *sh, const float *a, double k, float *g,
                                 esm_err *err);

/* ---- ranking (es.c) ----
 * Ranks the P fitness values (best first, non-finite last, ties by index), opens this process's
 * shard of dim coordinates over comm (NULL: alone) and calls fn with both: the setting every tell,
 * and every estimate taken without a step (es/estimate.h), works in. */
typedef esm_status (*esm_es_ranked_fn)(void *ctx, const esm_es_ranking *rk, const esm_es_shard *sh, esm_err *err);
esm_status esm_es_ranked(const float *fitness, int p, size_t dim, const esm_es_comm *comm, esm_es_ranked_fn fn,
                         void *ctx, esm_err *err);

/* ---- openai-es's gradient estimate (openai_es.c) ----
 * (1 / (P sigma)) sum_i w_i e_i, w the centred ranks of rk: the ascent direction its tell hands the
 * optimiser (before weight decay). */
esm_status esm_es_openai_gradient(const esm_es *es, const esm_es_ranking *rk, const esm_es_shard *sh, float *g,
                                  esm_err *err);

/* ---- noise accumulation (noise.c) ----
 * For coordinates [begin, begin+n), n <= ESM_ES_CHUNK:
 *   s1[j] = sum_i a[i] * e_i[j],  s2[j] = sum_i b[i] * e_i[j]^2
 * with e_i member i's standard noise this generation, members in order 0..P-1, skipping
 * members whose weights are both 0. a or b may be NULL (treated as 0); s2 may be NULL when b is. */
void esm_es_accumulate(const esm_es *es, const float *a, const float *b, size_t begin, size_t n,
                       double *s1, double *s2);

/* ---- fitness shaping (fitness.c); w has one entry per member ---- */
void esm_es_centered_ranks(const esm_es_ranking *rk, float *w);  /* best +0.5, worst -0.5 */
/* The weights of shaping how (ranks or z-scores). */
void esm_es_shape(esm_es_shaping how, const esm_es_ranking *rk, float *w);
/* ESM_OK if how is a shaping openai-es and pgpe know. */
esm_status esm_es_shaping_validate(esm_es_shaping how, esm_err *err);
void esm_es_standardised(const esm_es_ranking *rk, float *w);    /* (f - mean) / std */
void esm_es_nes_utilities(const esm_es_ranking *rk, float *w);   /* Wierstra et al. 2014 */
/* Positive log weights on the best mu, zero elsewhere, summing to 1; returns mu_eff. */
double esm_es_cma_weights(int popsize, int mu, float *w_by_rank);

/* ---- centre optimisers (optim.c) ---- */
typedef struct {
    float *m;     /* Adam first moment, SGD/ClipUp velocity */
    float *v;     /* Adam second moment */
    uint64_t t;   /* steps taken */
} esm_optim_state;

esm_status esm_optim_validate(const esm_optim_config *oc, esm_err *err);
esm_status esm_optim_alloc(esm_optim_state *os, const esm_optim_config *oc, size_t dim, esm_err *err);
void esm_optim_release(esm_optim_state *os);
size_t esm_optim_state_size(const esm_optim_config *oc, size_t dim);
void esm_optim_save(const esm_optim_state *os, const esm_optim_config *oc, size_t dim, esm_writer *w);
void esm_optim_load(esm_optim_state *os, const esm_optim_config *oc, size_t dim, esm_reader *r);
/* Ascends along g (adding the weight decay), updating theta; g is used as scratch.
 * partial has esm_es_nchunks(dim) entries. Returns the norm of the change of theta. */
double esm_optim_step(const esm_optim_config *oc, esm_optim_state *os, float *theta, float *g,
                      size_t dim, double *partial);

/* Checkpoint bytes: core/bytes.h's writer and reader, the one little-endian encoder. */
#endif
