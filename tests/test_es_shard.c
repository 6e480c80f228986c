/* The sharded update, with the processes played by threads of this test: every shard count gives
 * the bits of one unsharded tell, whatever the shards' sizes and wherever they cut the chunks. */
#include <pthread.h>
#include <string.h>

#include "es_helpers.h"
#include "harness.h"

#define MAX_PROCS 4

/* An in-place allgather between threads: each publishes its buffer, then copies the others'
 * blocks out of theirs; the barriers keep a buffer unchanged until everyone has copied it. */
typedef struct {
    pthread_barrier_t bar;
    void *bufs[MAX_PROCS];
    int size;
    long calls[MAX_PROCS];
} thread_group;

typedef struct {
    thread_group *g;
    int rank;
} proc_ctx;

static esm_status thread_allgather(void *ctx, void *buf, size_t elem, const int *counts, esm_err *err)
{
    (void)err;
    proc_ctx *p = ctx;
    thread_group *g = p->g;
    g->bufs[p->rank] = buf;
    g->calls[p->rank]++;
    pthread_barrier_wait(&g->bar);
    size_t off = 0;
    for (int r = 0; r < g->size; r++) {
        size_t n = (size_t)counts[r] * elem;
        if (r != p->rank)
            memcpy((char *)buf + off, (char *)g->bufs[r] + off, n);
        off += n;
    }
    pthread_barrier_wait(&g->bar);
    return ESM_OK;
}

typedef struct {
    const char *strategy;
    size_t dim;
    int gens;
    proc_ctx ctx;
    unsigned char *state; /* after the last tell */
    size_t len;
    esm_status st;
    esm_err err;
} proc_job;

static esm_es *make_es(const char *name, size_t dim, esm_err *err)
{
    esm_es_config c;
    if (esm_es_config_init(&c, name, dim, err) != ESM_OK)
        return NULL;
    c.seed = 99;
    c.sigma0 = 0.3f;
    c.popsize = 10;
    float *x0 = malloc(dim * sizeof *x0);
    esm_es *es = NULL;
    for (size_t j = 0; x0 && j < dim; j++)
        x0[j] = 0.4f - (float)(j % 7) * 0.1f;
    if (x0)
        esm_es_create(&es, &c, x0, err);
    free(x0);
    return es;
}

/* One process: gens sharded tells (every process evaluates everyone, as the trainer's exchange
 * leaves every rank with all fitness values), then the state gathered. */
static void *run_proc(void *arg)
{
    proc_job *j = arg;
    esm_es_comm comm = {.rank = j->ctx.rank, .size = j->ctx.g->size, .allgather = thread_allgather, .ctx = &j->ctx};
    esm_es *es = make_es(j->strategy, j->dim, &j->err);
    float *fit = es ? malloc(10 * sizeof *fit) : NULL;
    float *theta = malloc(j->dim * sizeof *theta);
    j->st = es && fit && theta ? ESM_OK : ESM_ENOMEM;
    for (int g = 0; g < j->gens && j->st == ESM_OK; g++) {
        for (int i = 0; i < 10; i++) {
            esm_es_member(es, i, theta);
            fit[i] = (float)-es_rastrigin(theta, j->dim);
        }
        j->st = esm_es_tell_sharded(es, fit, &comm, NULL, &j->err);
    }
    if (j->st == ESM_OK)
        j->state = es_snapshot(es, &j->len);
    esm_es_free(es);
    free(fit), free(theta);
    return NULL;
}

TEST(es_sharded_tell_matches_one_process_for_1_to_4_shards)
{
    /* 6 chunks, the last of 300 coordinates: 3 and 4 shards cut chunks in the middle, 4 unevenly
     * (1331, 1331, 1331, 1330 coordinates). */
    const char *names[] = {"openai-es", "pgpe", "snes", "sep-cma"};
    size_t dim = 5 * 1024 + 300;
    for (int k = 0; k < 4; k++) {
        esm_err err = {0};
        esm_es *ref = make_es(names[k], dim, &err);
        REQUIRE_OK(ref ? ESM_OK : err.code, &err);
        REQUIRE_OK(es_run(ref, es_rastrigin, 4, &err), &err);
        size_t ref_len;
        unsigned char *want = es_snapshot(ref, &ref_len);
        REQUIRE(want);
        for (int n = 1; n <= MAX_PROCS; n++) {
            thread_group g = {.size = n};
            pthread_barrier_init(&g.bar, NULL, (unsigned)n);
            proc_job jobs[MAX_PROCS];
            pthread_t th[MAX_PROCS];
            for (int r = 0; r < n; r++) {
                jobs[r] = (proc_job){.strategy = names[k], .dim = dim, .gens = 4, .ctx = {&g, r}};
                REQUIRE(pthread_create(&th[r], NULL, run_proc, &jobs[r]) == 0);
            }
            for (int r = 0; r < n; r++)
                pthread_join(th[r], NULL);
            pthread_barrier_destroy(&g.bar);
            for (int r = 0; r < n; r++) {
                CHECKF(jobs[r].st == ESM_OK, "%s, %d shards, process %d: %s", names[k], n, r, jobs[r].err.msg);
                /* The whole state, optimiser included, on every process after every tell. */
                CHECKF(jobs[r].state && jobs[r].len == ref_len && !memcmp(jobs[r].state, want, ref_len),
                       "%s, %d shards: process %d's state differs from one process's", names[k], n, r);
                /* Alone nothing is gathered; in company each tell gathers each noise sum it uses
                 * once: openai-es's weighted sum, the others' squared one too. */
                long sums = k == 0 ? 1 : 2;
                CHECKF(g.calls[r] == (n == 1 ? 0 : 4 * sums), "%s, %d shards: %ld gathers", names[k], n, g.calls[r]);
                free(jobs[r].state);
            }
        }
        free(want);
        esm_es_free(ref);
    }
}

TEST(es_shard_ranges_are_contiguous_balanced_and_complete)
{
    size_t dims[] = {1, 5, 1023, 1024, 1025, 5 * 1024 + 300};
    for (size_t q = 0; q < sizeof dims / sizeof *dims; q++)
        for (int size = 1; size <= 7; size++) {
            size_t next = 0, most = 0, least = (size_t)-1;
            for (int r = 0; r < size; r++) {
                size_t b, e;
                esm_es_shard_range(dims[q], r, size, &b, &e);
                CHECKF(b == next && e >= b, "dim %zu, %d shards, shard %d: [%zu, %zu)", dims[q], size, r, b, e);
                most = e - b > most ? e - b : most;
                least = e - b < least ? e - b : least;
                next = e;
            }
            CHECKF(next == dims[q] && most - least <= 1, "dim %zu over %d", dims[q], size);
        }
}

TEST(es_sharded_tell_rejects_a_bad_communicator)
{
    esm_err err = {0};
    esm_es *es = make_es("openai-es", 2000, &err);
    REQUIRE(es);
    float fit[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    size_t len;
    unsigned char *before = es_snapshot(es, &len);
    esm_es_comm bad = {.rank = 3, .size = 2, .allgather = thread_allgather};
    CHECK(esm_es_tell_sharded(es, fit, &bad, NULL, &err) == ESM_EINVAL && strstr(err.msg, "rank"));
    bad = (esm_es_comm){.rank = 0, .size = 2, .allgather = NULL};
    CHECK(esm_es_tell_sharded(es, fit, &bad, NULL, &err) == ESM_EINVAL && strstr(err.msg, "allgather"));
    size_t len2;
    unsigned char *after = es_snapshot(es, &len2);
    CHECK(before && after && len == len2 && !memcmp(before, after, len));
    free(before), free(after);
    esm_es_free(es);
}
