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

double esm_es_sumsq(const float *x, size_t dim, double *partial)
{
    long nch = (long)esm_es_nchunks(dim);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nch; c++) {
        size_t b = (size_t)c * ESM_ES_CHUNK, e = b + ESM_ES_CHUNK < dim ? b + ESM_ES_CHUNK : dim;
        double s = 0;
        for (size_t j = b; j < e; j++)
            s += (double)x[j] * x[j];
        partial[c] = s;
    }
    return esm_es_sum_ordered(partial, (size_t)nch);
}
