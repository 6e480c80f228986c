/* The MPI back end: the only code that includes mpi.h. Only the thread that created the
 * handle calls MPI (MPI_THREAD_FUNNELED); OpenMP threads never do. */
#include <stdlib.h>
#include <time.h>

#include "dist/dist_internal.h"

#if ESM_HAVE_MPI
#include <mpi.h>

/* Waits for a non-blocking collective without spinning. A blocking collective busy-polls a
 * core while this rank waits for slower ones; with ranks (and their OpenMP threads) sharing
 * cores that steals the very CPU the slow rank needs. Polling with short sleeps costs at most
 * ~1 ms against generations that take tens of milliseconds or more. */
static int wait_gently(MPI_Request *req)
{
    long ns = 20000;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done)
            return rc;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        ns = ns < 1000000 ? ns * 2 : ns;
    }
}

static esm_status mpi_fail(esm_err *err, int rc, const char *call)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        len = 0;
    msg[len] = 0;
    return esm_fail(err, ESM_EDIST, "%s failed: %s", call, msg);
}

esm_status esm_mpi_init(esm_dist *d, esm_err *err)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (inited)
        return esm_fail(err, ESM_EDIST, "MPI is already initialised in this process; create one esm_dist only");
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Init_thread");
    d->mpi = 1;
    if (provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        d->mpi = 0;
        return esm_fail(err, ESM_EDIST, "this MPI does not support MPI_THREAD_FUNNELED (OpenMP inside a rank)");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &d->local_rank);
        MPI_Comm_free(&node);
    }
    d->displs = malloc((size_t)d->size * sizeof *d->displs);
    if (!d->displs) {
        MPI_Finalize();
        d->mpi = 0;
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    }
    return ESM_OK;
}

void esm_mpi_finalize(esm_dist *d)
{
    MPI_Finalize();
    d->mpi = 0;
}

esm_status esm_mpi_allgather_f32(esm_dist *d, const float *send, float *recv, const int *counts, esm_err *err)
{
    int off = 0;
    for (int r = 0; r < d->size; r++)
        d->displs[r] = off, off += counts[r];
    MPI_Request req;
    int rc = MPI_Iallgatherv(send, counts[d->rank], MPI_FLOAT, recv, counts, d->displs, MPI_FLOAT, MPI_COMM_WORLD,
                             &req);
    if (rc == MPI_SUCCESS)
        rc = wait_gently(&req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Allgatherv");
    d->sent += (uint64_t)counts[d->rank] * sizeof(float) * (uint64_t)(d->size - 1);
    return ESM_OK;
}

esm_status esm_mpi_allgather_inplace(esm_dist *d, void *buf, size_t elem_size, const int *counts, esm_err *err)
{
    if (elem_size != 4 && elem_size != 8)
        return esm_fail(err, ESM_EINVAL, "allgather of %zu-byte elements: only 4 (float) and 8 (double)", elem_size);
    int off = 0;
    for (int r = 0; r < d->size; r++)
        d->displs[r] = off, off += counts[r];
    MPI_Request req;
    int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, d->displs,
                             elem_size == 4 ? MPI_FLOAT : MPI_DOUBLE, MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_gently(&req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Allgatherv");
    d->sent += (uint64_t)counts[d->rank] * elem_size * (uint64_t)(d->size - 1);
    return ESM_OK;
}

esm_status esm_mpi_min_u64(esm_dist *d, const uint64_t *in, uint64_t *out, int n, esm_err *err)
{
    MPI_Request req;
    int rc = MPI_Iallreduce(in, out, n, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_gently(&req);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Allreduce");
    d->sent += (uint64_t)n * 8u * (uint64_t)(d->size - 1);
    return ESM_OK;
}

void esm_mpi_abort(esm_dist *d, int code)
{
    (void)d;
    MPI_Abort(MPI_COMM_WORLD, code);
}

#else /* a build without MPI: dist.c only gets here if the environment says mpirun */

static esm_status no_mpi(esm_err *err)
{
    return esm_fail(err, ESM_EUNSUPPORTED, "started by mpirun, but this esmeta was built without MPI (install "
                    "libopenmpi-dev and rebuild)");
}

esm_status esm_mpi_init(esm_dist *d, esm_err *err) { (void)d; return no_mpi(err); }
void esm_mpi_finalize(esm_dist *d) { (void)d; }
esm_status esm_mpi_allgather_f32(esm_dist *d, const float *send, float *recv, const int *counts, esm_err *err)
{
    (void)d, (void)send, (void)recv, (void)counts;
    return no_mpi(err);
}
esm_status esm_mpi_allgather_inplace(esm_dist *d, void *buf, size_t elem_size, const int *counts, esm_err *err)
{
    (void)d, (void)buf, (void)elem_size, (void)counts;
    return no_mpi(err);
}
esm_status esm_mpi_min_u64(esm_dist *d, const uint64_t *in, uint64_t *out, int n, esm_err *err)
{
    (void)d, (void)in, (void)out, (void)n;
    return no_mpi(err);
}
void esm_mpi_abort(esm_dist *d, int code) { (void)d, (void)code; }
#endif
