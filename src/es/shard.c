/* Shards of the update. What grows with the population in a tell is the noise: every member's
 * over every coordinate, O(P * dim). That part alone is split: each process sums the members'
 * noise for its own coordinates and the processes gather the sums; the rest of the update is
 * O(dim) and every process performs all of it, on the same full vectors, so the optimiser state
 * is whole everywhere and every reduction over coordinates is summed exactly as one process
 * sums it. */
#include "es/strategy.h"

#include <limits.h>
#include <stdlib.h>

void esm_es_shard_range(size_t dim, int rank, int size, size_t *begin, size_t *end)
{
    size_t base = dim / (size_t)size, extra = dim % (size_t)size, r = (size_t)rank;
    *begin = r * base + (r < extra ? r : extra);
    *end = *begin + base + (r < extra);
}

esm_status esm_es_shard_open(esm_es_shard *sh, size_t dim, const esm_es_comm *comm, esm_err *err)
{
    int alone = !comm || comm->size <= 1;
    *sh = (esm_es_shard){.comm = alone ? NULL : comm, .dim = dim, .e = dim};
    if (alone)
        return ESM_OK;
    if (comm->rank < 0 || comm->rank >= comm->size || !comm->allgather)
        return esm_fail(err, ESM_EINVAL, "sharded update: process %d of %d, allgather %s: pass a rank in [0, size) "
                        "and an allgather", comm->rank, comm->size, comm->allgather ? "set" : "NULL");
    if (dim / (size_t)comm->size >= INT_MAX)
        return esm_fail(err, ESM_EINVAL, "sharded update: %zu coordinates over %d processes is more than 2^31 - 1 a "
                        "process; use more processes", dim, comm->size);
    sh->counts = malloc((size_t)comm->size * sizeof *sh->counts);
    if (!sh->counts)
        return esm_fail(err, ESM_ENOMEM, "sharded update over %d processes: out of memory", comm->size);
    for (int r = 0; r < comm->size; r++) {
        size_t b, e;
        esm_es_shard_range(dim, r, comm->size, &b, &e);
        sh->counts[r] = (int)(e - b);
    }
    esm_es_shard_range(dim, comm->rank, comm->size, &sh->b, &sh->e);
    return ESM_OK;
}

void esm_es_shard_close(esm_es_shard *sh)
{
    free(sh->counts);
    sh->counts = NULL;
}

esm_status esm_es_sums_open(esm_es_sums *S, const esm_es *es, const esm_es_shard *sh, const float *a, const float *b,
                            esm_err *err)
{
    *S = (esm_es_sums){.es = es, .a = a, .b = b};
    if (!sh->comm)
        return ESM_OK;
    S->s1 = malloc(sh->dim * sizeof *S->s1);
    S->s2 = b ? malloc(sh->dim * sizeof *S->s2) : NULL;
    if (!S->s1 || (b && !S->s2)) {
        esm_es_sums_close(S);
        return esm_fail(err, ESM_ENOMEM, "sharded update: noise sums for dim %zu: out of memory", sh->dim);
    }
    /* Pieces of at most a chunk, the unit of parallel work; where they start changes no bit. */
    long n_pieces = (long)esm_es_nchunks(sh->e - sh->b);
#pragma omp parallel for schedule(static)
    for (long k = 0; k < n_pieces; k++) {
        size_t lo = sh->b + (size_t)k * ESM_ES_CHUNK, n = sh->e - lo < ESM_ES_CHUNK ? sh->e - lo : ESM_ES_CHUNK;
        esm_es_accumulate(es, a, b, lo, n, S->s1 + lo, b ? S->s2 + lo : NULL);
    }
    esm_status st = sh->comm->allgather(sh->comm->ctx, S->s1, sizeof *S->s1, sh->counts, err);
    if (st == ESM_OK && b)
        st = sh->comm->allgather(sh->comm->ctx, S->s2, sizeof *S->s2, sh->counts, err);
    if (st != ESM_OK)
        esm_es_sums_close(S);
    return st;
}

void esm_es_sums_get(const esm_es_sums *S, size_t begin, size_t n, double *buf1, double *buf2, const double **s1,
                     const double **s2)
{
    if (S->s1) {
        *s1 = S->s1 + begin;
        *s2 = S->s2 ? S->s2 + begin : NULL;
        return;
    }
    esm_es_accumulate(S->es, S->a, S->b, begin, n, buf1, S->b ? buf2 : NULL);
    *s1 = buf1;
    *s2 = S->b ? buf2 : NULL;
}

void esm_es_sums_close(esm_es_sums *S)
{
    free(S->s1);
    free(S->s2);
    S->s1 = S->s2 = NULL;
}

esm_status esm_es_weighted_noise(const esm_es *es, const esm_es_shard *sh, const float *a, double k, float *g,
                                 esm_err *err)
{
    esm_es_sums S;
    esm_status s = esm_es_sums_open(&S, es, sh, a, NULL, err);
    if (s != ESM_OK)
        return s;
    size_t dim = es->cfg.dim;
#pragma omp parallel for schedule(static)
    for (long c = 0; c < (long)esm_es_nchunks(dim); c++) {
        size_t b = (size_t)c * ESM_ES_CHUNK, n = dim - b < ESM_ES_CHUNK ? dim - b : ESM_ES_CHUNK;
        double buf[ESM_ES_CHUNK];
        const double *s1, *s2;
        esm_es_sums_get(&S, b, n, buf, NULL, &s1, &s2);
        for (size_t j = 0; j < n; j++)
            g[b + j] = (float)(k * s1[j]);
    }
    esm_es_sums_close(&S);
    return ESM_OK;
}
