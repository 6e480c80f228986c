/* Shards of the update: which chunks a process owns and the gathers that complete its
 * partial results. Only whole chunks are split, and partial sums travel per chunk and are
 * added in chunk order by everyone, so a sum has the same bits however many processes took
 * part. */
#include "es/strategy.h"

#include <limits.h>
#include <stdlib.h>

static void chunk_slice(size_t nch, int rank, int size, size_t *c0, size_t *c1)
{
    size_t base = nch / (size_t)size, extra = nch % (size_t)size, r = (size_t)rank;
    *c0 = r * base + (r < extra ? r : extra);
    *c1 = *c0 + base + (r < extra);
}

void esm_es_shard_range(size_t dim, int rank, int size, size_t *begin, size_t *end)
{
    size_t c0, c1;
    chunk_slice(esm_es_nchunks(dim), rank, size, &c0, &c1);
    *begin = c0 * ESM_ES_CHUNK < dim ? c0 * ESM_ES_CHUNK : dim;
    *end = c1 * ESM_ES_CHUNK < dim ? c1 * ESM_ES_CHUNK : dim;
}

esm_status esm_es_shard_open(esm_es_shard *sh, size_t dim, const esm_es_comm *comm, esm_err *err)
{
    int alone = !comm || comm->size <= 1;
    *sh = (esm_es_shard){.comm = alone ? NULL : comm, .dim = dim, .nch = esm_es_nchunks(dim)};
    if (alone) {
        sh->c1 = sh->nch, sh->e = dim;
        return ESM_OK;
    }
    if (comm->rank < 0 || comm->rank >= comm->size || !comm->allgather)
        return esm_fail(err, ESM_EINVAL, "sharded update: process %d of %d, allgather %s: pass a rank in [0, size) "
                        "and an allgather", comm->rank, comm->size, comm->allgather ? "set" : "NULL");
    sh->counts = malloc((size_t)comm->size * sizeof *sh->counts);
    if (!sh->counts)
        return esm_fail(err, ESM_ENOMEM, "sharded update over %d processes: out of memory", comm->size);
    chunk_slice(sh->nch, comm->rank, comm->size, &sh->c0, &sh->c1);
    esm_es_shard_range(dim, comm->rank, comm->size, &sh->b, &sh->e);
    size_t b0, e0; /* rank 0's shard is the largest */
    esm_es_shard_range(dim, 0, comm->size, &b0, &e0);
    if (e0 - b0 > INT_MAX) {
        esm_es_shard_close(sh);
        return esm_fail(err, ESM_EINVAL, "sharded update: %zu coordinates over %d processes is more than 2^31 - 1 a "
                        "process; use more processes", dim, comm->size);
    }
    return ESM_OK;
}

void esm_es_shard_close(esm_es_shard *sh)
{
    free(sh->counts);
    sh->counts = NULL;
}

esm_status esm_es_gather_partials(const esm_es_shard *sh, double *partial, esm_err *err)
{
    if (!sh->comm)
        return ESM_OK;
    for (int r = 0; r < sh->comm->size; r++) {
        size_t c0, c1;
        chunk_slice(sh->nch, r, sh->comm->size, &c0, &c1);
        sh->counts[r] = (int)(c1 - c0);
    }
    return sh->comm->allgather(sh->comm->ctx, partial, sizeof *partial, sh->counts, err);
}

esm_status esm_es_reduce(const esm_es_shard *sh, double *partial, double *sum, esm_err *err)
{
    esm_status st = esm_es_gather_partials(sh, partial, err);
    if (st == ESM_OK)
        *sum = esm_es_sum_ordered(partial, sh->nch);
    return st;
}

esm_status esm_es_gather_floats(const esm_es_shard *sh, float *x, esm_err *err)
{
    if (!sh->comm)
        return ESM_OK;
    for (int r = 0; r < sh->comm->size; r++) {
        size_t b, e;
        esm_es_shard_range(sh->dim, r, sh->comm->size, &b, &e);
        sh->counts[r] = (int)(e - b);
    }
    return sh->comm->allgather(sh->comm->ctx, x, sizeof *x, sh->counts, err);
}
