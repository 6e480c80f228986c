/* esmeta dist: the few collective operations distributed training needs, over MPI when the
 * process was launched by mpirun and a serial (one-rank) fallback otherwise.
 *
 * Every call below except rank/size/bytes_sent/abort is COLLECTIVE: all ranks must make the
 * same calls in the same order. A NULL handle behaves as the serial fallback (rank 0 of 1),
 * so code written for a handle runs unchanged without one.
 *
 * Failures of a peer (a killed rank, a broken link) are not reported through these calls:
 * MPI's default error handler ends the whole job, which is what a training run wants. */
#ifndef ESMETA_DIST_H
#define ESMETA_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esm_dist esm_dist;

/* MPI when the environment says mpirun started this process (OMPI_COMM_WORLD_SIZE, PMIX_RANK
 * or PMI_SIZE) and the build has MPI; the serial fallback otherwise. Call at most once per
 * process (MPI cannot be initialised twice); only the calling thread may use the handle. */
esm_status esm_dist_init(esm_dist **out, esm_err *err);
/* Always the serial fallback. */
esm_status esm_dist_serial(esm_dist **out, esm_err *err);
/* Finalises MPI (if it was initialised) and frees the handle. NULL is fine. */
void esm_dist_free(esm_dist *d);

int esm_dist_rank(const esm_dist *d);
/* This rank's index among the job's ranks on its own machine (0 serial): which GPU it takes. */
int esm_dist_local_rank(const esm_dist *d);
int esm_dist_size(const esm_dist *d);
int esm_dist_is_mpi(const esm_dist *d);

/* Rank r's contiguous share [*begin, *end) of n items split as evenly as possible over size
 * ranks (the first n % size ranks get one more). Pure; needs no handle. */
void esm_dist_slice(int n, int rank, int size, int *begin, int *end);

/* Every rank contributes counts[rank] floats from send; recv (sum of counts) receives all
 * contributions in rank order. counts[] must be the same on every rank. */
esm_status esm_dist_allgather_f32(esm_dist *d, const float *send, float *recv, const int *counts, esm_err *err);
/* In place: buf holds one block per rank, block r being counts[r] elements of elem_size bytes
 * (4: floats, 8: doubles) at the sum of the earlier counts; this rank's block is filled on
 * entry, every block on return. counts[] must be the same on every rank. */
esm_status esm_dist_allgather_inplace(esm_dist *d, void *buf, size_t elem_size, const int *counts, esm_err *err);
/* ESM_EDIST naming `what` unless every rank passed the same h. */
esm_status esm_dist_check_same(esm_dist *d, uint64_t h, const char *what, esm_err *err);
/* The largest flag over all ranks (e.g. "has any rank been asked to stop"). */
esm_status esm_dist_max_int(esm_dist *d, int flag, int *out, esm_err *err);

/* Bytes this rank has handed to other ranks so far: each collective counts this rank's own
 * contribution once per other rank (size - 1), which is what must reach them whatever
 * algorithm MPI picks. 0 for the serial fallback. */
uint64_t esm_dist_bytes_sent(const esm_dist *d);
/* Seconds this rank has spent inside collectives so far (waiting for the others included).
 * 0 for the serial fallback. */
double esm_dist_comm_seconds(const esm_dist *d);

/* Ends every rank of the job now with exit status code (serial: does nothing and returns,
 * so the caller still exits itself). For failures that only some ranks see. */
void esm_dist_abort(esm_dist *d, int code);

/* FNV-1a over n bytes, continuing from h (start with ESM_DIST_HASH_INIT). */
#define ESM_DIST_HASH_INIT 14695981039346656037ull
uint64_t esm_dist_hash(uint64_t h, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif
