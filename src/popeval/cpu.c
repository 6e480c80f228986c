/* The CPU population evaluator: one member per OpenMP thread, each thread rebuilding its
 * member's parameters from the noise into its own vector, so memory does not grow with the
 * population. Member results land at their own index, so they do not depend on the thread
 * count or the schedule. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "esmeta/es.h"
#include "esmeta/protonet.h"
#include "core/simd.h"
#include "es/member.h"
#include "popeval/popeval.h"

/* What one thread needs to score a member. */
typedef struct {
    esm_protonet_ws *ws;         /* whole episodes (stream_chunk 0) */
    esm_protonet_stream *stream; /* streamed episodes (stream_chunk > 0) */
    float *theta; /* (n_params) the member's parameters */
    float *noise; /* (n_params) the noise of the member or antithetic pair being scored */
} member_slot;

typedef struct {
    esm_net net;
    esm_episode_shape shape;
    int stream_chunk;   /* images per chunk; 0 = whole episodes */
    member_slot *slots; /* [n_slots], grown to the thread count on demand */
    int n_slots;
    float *cols; /* the job's episodes' block-0 lowered inputs, one after the other (whole episodes) */
    size_t cols_cap;
} cpu_eval;

static esm_status cpu_create(const esm_net *net, esm_episode_shape shape, int max_members,
                             const esm_popeval_opts *opts, void **impl, esm_err *err)
{
    (void)max_members;
    if (opts && opts->stream_chunk < 0)
        return esm_fail_field(err, ESM_EINVAL, "stream_chunk", "stream_chunk %d must be 0 (whole episodes) or positive",
                              opts->stream_chunk);
    cpu_eval *c = calloc(1, sizeof *c);
    if (!c)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    c->net = *net;
    c->shape = shape;
    c->stream_chunk = opts ? opts->stream_chunk : 0;
    *impl = c;
    return ESM_OK;
}

static void cpu_free(void *impl)
{
    cpu_eval *c = impl;
    if (!c)
        return;
    for (int k = 0; k < c->n_slots; k++) {
        esm_protonet_ws_free(c->slots[k].ws);
        esm_protonet_stream_free(c->slots[k].stream);
        free(c->slots[k].theta);
        free(c->slots[k].noise);
    }
    free(c->slots);
    free(c->cols);
    free(c);
}

/* One slot per thread that will run; kept between generations. */
static esm_status ensure_slots(cpu_eval *c, int n, esm_err *err)
{
    if (n <= c->n_slots)
        return ESM_OK;
    member_slot *grown = realloc(c->slots, (size_t)n * sizeof *grown);
    if (!grown)
        return esm_fail(err, ESM_ENOMEM, "out of memory for %d evaluation threads", n);
    c->slots = grown;
    esm_episode_shape sh = c->shape;
    for (; c->n_slots < n; c->n_slots++) {
        member_slot *m = &c->slots[c->n_slots];
        m->theta = malloc(c->net.n_params * sizeof(float));
        m->noise = malloc(c->net.n_params * sizeof(float));
        if (!m->theta || !m->noise) {
            free(m->theta), free(m->noise);
            return esm_fail(err, ESM_ENOMEM, "out of memory for member parameters");
        }
        m->ws = NULL, m->stream = NULL;
        esm_status st = c->stream_chunk > 0
                            ? esm_protonet_stream_create(&c->net, sh.way, c->stream_chunk, &m->stream, err)
                            : esm_protonet_ws_create(&c->net, sh.way, sh.shot, sh.way * sh.query, 0, &m->ws, err);
        if (st != ESM_OK) {
            free(m->theta), free(m->noise);
            return st;
        }
    }
    return ESM_OK;
}

/* The member from its pair's noise z (negating it is exact), so one draw serves both members of
 * an antithetic pair and each is bit-identical to esm_es_population_member's. */
ESM_HOT static void add_scaled(const float *mean, const float *scale, const float *z, int neg, size_t n,
                               float *theta)
{
    if (neg)
        for (size_t j = 0; j < n; j++)
            theta[j] = esm_member_coord(mean[j], scale[j], -z[j]);
    else
        for (size_t j = 0; j < n; j++)
            theta[j] = esm_member_coord(mean[j], scale[j], z[j]);
}

/* The job's members in units that share one noise draw: antithetic pairs (or the one member of a
 * pair that the job's range cuts), else single members. Unit u is members [*lo, *hi). */
static int unit_count(const esm_popeval_job *job)
{
    if (!job->pop.antithetic)
        return job->count;
    return (job->begin + job->count - 1) / 2 - job->begin / 2 + 1;
}

static void unit_members(const esm_popeval_job *job, int u, int *lo, int *hi)
{
    int end = job->begin + job->count;
    if (!job->pop.antithetic) {
        *lo = job->begin + u, *hi = *lo + 1;
        return;
    }
    int first = (job->begin / 2 + u) * 2;
    *lo = first > job->begin ? first : job->begin;
    *hi = first + 2 < end ? first + 2 : end;
}

/* esm_episodes_score, with the episodes' lowered inputs (lower_episodes) when cols is not NULL */
static esm_status episodes_score(const esm_net *net, const esm_episode *eps, int n_eps, const float *cols,
                                 const float *params, float *bn, esm_bn_mode mode, esm_protonet_ws *ws,
                                 esm_protonet_stream *stream, float *loss, float *acc, esm_err *err)
{
    double ls = 0, as = 0;
    for (int j = 0; j < n_eps; j++) {
        const esm_episode *ep = &eps[j];
        esm_episode_shape sh = ep->shape;
        float l = NAN, a = NAN;
        esm_status st;
        if (stream) {
            esm_episode_arrays arr;
            esm_episode_stream es = esm_episode_stream_arrays(&arr, ep->support, sh.way, sh.shot, ep->query,
                                                              ep->query_label, sh.way * sh.query, net->in_size);
            st = esm_protonet_loss_stream(net, params, bn, mode, stream, &es, &l, &a, err);
        } else {
            st = esm_protonet_loss_lowered(net, params, bn, mode, ws, cols, ep->support, sh.way, sh.shot, ep->query,
                                           ep->query_label, sh.way * sh.query, &l, &a, err);
            if (cols)
                cols += esm_protonet_lowered_floats(net, sh.way, sh.shot, sh.way * sh.query);
        }
        if (st == ESM_ENONFINITE)
            l = a = NAN;
        else if (st != ESM_OK)
            return st;
        ls += l, as += a;
    }
    *loss = (float)(ls / n_eps);
    *acc = (float)(as / n_eps);
    return ESM_OK;
}

esm_status esm_episodes_score(const esm_net *net, const esm_episode *eps, int n_eps, const float *params, float *bn,
                              esm_bn_mode mode, esm_protonet_ws *ws, esm_protonet_stream *stream, float *loss,
                              float *acc, esm_err *err)
{
    return episodes_score(net, eps, n_eps, NULL, params, bn, mode, ws, stream, loss, acc, err);
}

/* Every member scores the same episodes: their block-0 lowering (padded planes) is done once here and
 * shared read-only, instead of once per member. */
static esm_status lower_episodes(cpu_eval *c, const esm_popeval_job *job, esm_err *err)
{
    size_t need = 0;
    for (int j = 0; j < job->n_eps; j++) {
        esm_episode_shape sh = job->eps[j].shape;
        need += esm_protonet_lowered_floats(&c->net, sh.way, sh.shot, sh.way * sh.query);
    }
    if (need > c->cols_cap) {
        float *grown = realloc(c->cols, need * sizeof *grown);
        if (!grown)
            return esm_fail(err, ESM_ENOMEM, "out of memory for the episodes' lowered inputs (%zu floats)", need);
        c->cols = grown, c->cols_cap = need;
    }
    float *at = c->cols;
    for (int j = 0; j < job->n_eps; j++) {
        const esm_episode *ep = &job->eps[j];
        esm_episode_shape sh = ep->shape;
        esm_status st = esm_protonet_lower_episode(&c->net, ep->support, sh.way, sh.shot, ep->query,
                                                   sh.way * sh.query, at, err);
        if (st != ESM_OK)
            return st;
        at += esm_protonet_lowered_floats(&c->net, sh.way, sh.shot, sh.way * sh.query);
    }
    return ESM_OK;
}

static esm_status cpu_evaluate(void *impl, const esm_popeval_job *job, float *loss, float *acc, float *fitness,
                               esm_err *err)
{
    cpu_eval *c = impl;
    if (job->count < 1)
        return ESM_OK;
    int units = unit_count(job), nt = omp_get_max_threads() < units ? omp_get_max_threads() : units;
    esm_status st = ensure_slots(c, nt, err);
    if (st == ESM_OK && c->stream_chunk == 0)
        st = lower_episodes(c, job, err);
    if (st != ESM_OK)
        return st;
    const float *cols = c->stream_chunk == 0 ? c->cols : NULL;
    esm_status *stat = calloc((size_t)nt, sizeof *stat);
    esm_err *errs = calloc((size_t)nt, sizeof *errs);
    if (!stat || !errs) {
        free(stat), free(errs);
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    }
    size_t np = c->net.n_params;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int u = 0; u < units; u++) {
        int tid = omp_get_thread_num(), lo, hi;
        member_slot *m = &c->slots[tid];
        unit_members(job, u, &lo, &hi);
        /* one draw for the unit: the first member's noise; its mirror (if any) is its negation */
        esm_es_noise_range(job->pop.seed, job->pop.gen, lo, job->pop.antithetic, 0, np, m->noise);
        for (int i = lo; i < hi && stat[tid] == ESM_OK; i++) {
            int k = i - job->begin;
            add_scaled(job->pop.mean, job->pop.scale, m->noise, i != lo, np, m->theta);
            stat[tid] = episodes_score(&c->net, job->eps, job->n_eps, cols, m->theta, NULL, ESM_BN_BATCH, m->ws,
                                       m->stream, &loss[k], &acc[k], &errs[tid]);
            fitness[k] = -loss[k];
        }
    }
    for (int k = 0; k < nt && st == ESM_OK; k++)
        if (stat[k] != ESM_OK) {
            st = stat[k];
            if (err)
                *err = errs[k];
        }
    free(stat), free(errs);
    return st;
}

const esm_popeval_ops esm_popeval_cpu_ops = {
    .name = "cpu",
    .create = cpu_create,
    .evaluate = cpu_evaluate,
    .free = cpu_free,
};
