/* Chunked reductions. OpenMP reduction clauses combine in an order that depends on the
 * thread count; summing fixed per-chunk partials in index order does not. */
#include "es/strategy.h"

size_t esm_es_nchunks(size_t dim)
{
    return (dim + ESM_ES_CHUNK - 1) / ESM_ES_CHUNK;
}

double esm_es_sum_ordered(const double *partial, size_t n)
{
    double s = 0;
    for (size_t c = 0; c < n; c++)
        s += partial[c];
    return s;
}
