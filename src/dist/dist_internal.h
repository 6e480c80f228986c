/* The communicator handle and the MPI back end behind it (dist_mpi.c, the only file that
 * sees mpi.h). dist.c dispatches: serial handles and NULL never reach the back end. */
#ifndef ESM_DIST_DIST_INTERNAL_H
#define ESM_DIST_DIST_INTERNAL_H

#include "esmeta/dist.h"

struct esm_dist {
    int rank, size;
    int local_rank;   /* among the ranks sharing this machine */
    int mpi;          /* 1: MPI was initialised by this handle and is finalised by its free */
    uint64_t sent;    /* see esm_dist_bytes_sent */
    double comm_s;    /* see esm_dist_comm_seconds */
    int *displs;      /* [size] scratch for allgather */
};

/* 1 if the environment says a process manager (mpirun, srun) started this process. */
int esm_dist_launched_by_mpirun(void);

/* Back end. Each returns ESM_EUNSUPPORTED in a build without MPI. */
esm_status esm_mpi_init(esm_dist *d, esm_err *err);
void esm_mpi_finalize(esm_dist *d);
esm_status esm_mpi_allgather_f32(esm_dist *d, const float *send, float *recv, const int *counts, esm_err *err);
/* In place; elem_size 4 (MPI_FLOAT) or 8 (MPI_DOUBLE). */
esm_status esm_mpi_allgather_inplace(esm_dist *d, void *buf, size_t elem_size, const int *counts, esm_err *err);
/* out[i] = min over ranks of in[i], for n 64-bit words. */
esm_status esm_mpi_min_u64(esm_dist *d, const uint64_t *in, uint64_t *out, int n, esm_err *err);
void esm_mpi_abort(esm_dist *d, int code);

#endif
