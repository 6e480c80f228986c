/* The communicator interface (esmeta/dist.h): serial fallback and dispatch to MPI. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist_internal.h"

int esm_dist_launched_by_mpirun(void)
{
    /* Open MPI's mpirun sets the first, PMIx launchers the second, Slurm/MPICH PMI the third. */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

esm_status esm_dist_serial(esm_dist **out, esm_err *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    (*out)->size = 1;
    return ESM_OK;
}

esm_status esm_dist_init(esm_dist **out, esm_err *err)
{
    esm_status st = esm_dist_serial(out, err);
    if (st != ESM_OK || !esm_dist_launched_by_mpirun())
        return st;
    st = esm_mpi_init(*out, err);
    if (st != ESM_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

void esm_dist_free(esm_dist *d)
{
    if (!d)
        return;
    if (d->mpi)
        esm_mpi_finalize(d);
    free(d->displs);
    free(d);
}

int esm_dist_rank(const esm_dist *d) { return d ? d->rank : 0; }
int esm_dist_local_rank(const esm_dist *d) { return d ? d->local_rank : 0; }
int esm_dist_size(const esm_dist *d) { return d ? d->size : 1; }
int esm_dist_is_mpi(const esm_dist *d) { return d ? d->mpi : 0; }
uint64_t esm_dist_bytes_sent(const esm_dist *d) { return d ? d->sent : 0; }
double esm_dist_comm_seconds(const esm_dist *d) { return d ? d->comm_s : 0; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void esm_dist_slice(int n, int rank, int size, int *begin, int *end)
{
    int base = n / size, extra = n % size;
    *begin = rank * base + (rank < extra ? rank : extra);
    *end = *begin + base + (rank < extra);
}

esm_status esm_dist_allgather_f32(esm_dist *d, const float *send, float *recv, const int *counts, esm_err *err)
{
    if (!d || !d->mpi) {
        if (counts[0] > 0)
            memmove(recv, send, (size_t)counts[0] * sizeof(float));
        return ESM_OK;
    }
    double t0 = now_s();
    esm_status st = esm_mpi_allgather_f32(d, send, recv, counts, err);
    d->comm_s += now_s() - t0;
    return st;
}

esm_status esm_dist_allgather_inplace(esm_dist *d, void *buf, size_t elem_size, const int *counts, esm_err *err)
{
    if (!d || !d->mpi)
        return ESM_OK; /* one rank: its block is already all of buf */
    double t0 = now_s();
    esm_status st = esm_mpi_allgather_inplace(d, buf, elem_size, counts, err);
    d->comm_s += now_s() - t0;
    return st;
}

esm_status esm_dist_check_same(esm_dist *d, uint64_t h, const char *what, esm_err *err)
{
    if (!d || !d->mpi)
        return ESM_OK;
    /* One reduction gives both the minimum and (through ~h) the maximum. */
    uint64_t in[2] = {h, ~h}, out[2];
    double t0 = now_s();
    esm_status st = esm_mpi_min_u64(d, in, out, 2, err);
    d->comm_s += now_s() - t0;
    if (st != ESM_OK)
        return st;
    if (out[0] != ~out[1])
        return esm_fail(err, ESM_EDIST, "the %d ranks disagree about %s (hashes %016llx..%016llx): they diverged; "
                        "stopped", d->size, what, (unsigned long long)out[0], (unsigned long long)~out[1]);
    return ESM_OK;
}

esm_status esm_dist_max_int(esm_dist *d, int flag, int *out, esm_err *err)
{
    if (!d || !d->mpi) {
        *out = flag;
        return ESM_OK;
    }
    /* max(flag) = -min(-flag), shifted into unsigned order. */
    uint64_t in = (uint64_t)(0x80000000ll - (long long)flag), m;
    double t0 = now_s();
    esm_status st = esm_mpi_min_u64(d, &in, &m, 1, err);
    d->comm_s += now_s() - t0;
    if (st == ESM_OK)
        *out = (int)(0x80000000ll - (long long)m);
    return st;
}

void esm_dist_abort(esm_dist *d, int code)
{
    if (d && d->mpi)
        esm_mpi_abort(d, code);
}

uint64_t esm_dist_hash(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
