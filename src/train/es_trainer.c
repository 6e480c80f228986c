/* The ES trainer: Prototypical Networks trained by evolution strategies (Sheng & He 2020).
 *
 * One step is one generation g: episodes g*E .. g*E+E-1 (E = episodes_per_gen) are sampled once
 * and every member is scored on the same ones (common random numbers, so members differ only
 * by their parameters). Fitness = minus the member's mean ProtoNet cross-entropy, as in the
 * paper. Members are scored by a population-evaluation backend (popeval/popeval.h, chosen by
 * --device): the CPU one runs one member per thread, each thread rebuilding its member from the
 * ES's (seed, generation, member) noise, so memory does not grow with the population; the CUDA
 * one runs whole member batches on the GPU. Member losses are reduced in member order after the
 * evaluation, and the ES update is itself thread-count invariant, so results do not depend on
 * the thread count.
 *
 * Batch norm. Members are scored with batch statistics (ESM_BN_BATCH), like backprop training
 * episodes, and never touch the running statistics: P members writing one buffer would make the
 * result depend on their order. Evaluation, though, must use running statistics (ESM_BN_EVAL)
 * so that test queries never influence each other through batch statistics. So after each tell
 * the NEW centre makes one ESM_BN_TRAIN forward per generation episode (support + query, as the
 * loss does; PyTorch momentum 0.1), and the running statistics track the centre network as
 * they track the trained network in backprop training.
 *
 * With stream_chunk > 0 (--chunk) members and the centre score episodes streamed
 * (esm_protonet_loss_stream): the same exact batch statistics in memory that does not grow with
 * the episode, at up to depth + 1 passes over it.
 *
 * A step that fails (every member non-finite, or a non-finite centre) leaves the trainer as it
 * was: the ES state is snapshotted before tell and restored on failure.
 *
 * Ranks (esm_trainer_set_dist). Rank r scores only its contiguous slice of the members and
 * the ranks allgather one block per rank: [status, then (fitness, loss, acc) per member], O(P)
 * floats. Each member's numbers do not depend on where it was scored, and every rank then runs the
 * same tell and centre pass on the same full vectors, so every rank holds the same bits as a single
 * process would. When the update is sharded (t->sharded), the tell's O(P * n_params) noise sums are
 * split by parameter ranges and gathered (esm_es_tell_sharded), 8 bytes a parameter per sum, with
 * the same bits; unsharded, no parameter crosses the wire. The status word lets
 * a rank that failed (out of memory, say) stop everyone instead of leaving them waiting. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esmeta/es.h"
#include "esmeta/protonet.h"
#include "popeval/popeval.h"
#include "train/trainer_internal.h"

typedef struct {
    esm_es *es;
    esm_episode *eps;    /* [episodes_per_gen] this generation's episodes, shared read-only */
    esm_popeval pe;      /* scores the members (cpu or cuda) */
    esm_protonet_ws *centre_ws; /* the centre's forwards, on the CPU whatever the device */
    esm_protonet_stream *centre_stream; /* the same when episodes are streamed (stream_chunk > 0) */
    float *scale;        /* (n_params) the ES's per-parameter std-dev of this generation */
    float *fitness, *loss, *acc; /* [pop] per member */
    float *bn_new;       /* (n_bn) running statistics being updated, committed on success */
    unsigned char *es_buf; /* esm_es_state_size bytes: checkpoint section and pre-tell snapshot */
    size_t es_bytes;
    float *send, *recv;  /* exchange blocks: [1 + 3 * slice] and [ranks + 3 * pop] */
    int *counts;         /* [ranks] floats each rank contributes */
    int x_ranks;         /* the rank count the exchange buffers are sized for (0 = none yet) */
} es_state;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

/* The ES library's allgather, lent by the ranks' communicator. */
static esm_status dist_allgather(void *ctx, void *buf, size_t elem_size, const int *counts, esm_err *err)
{
    return esm_dist_allgather_inplace(ctx, buf, elem_size, counts, err);
}

static esm_es_comm es_comm(const esm_trainer *t)
{
    return (esm_es_comm){.rank = esm_dist_rank(t->dist), .size = esm_dist_size(t->dist),
                         .allgather = dist_allgather, .ctx = t->dist};
}

/* SplitMix64's finaliser: the ES noise key must differ from the episode and init streams,
 * which use cfg.seed itself. */
static uint64_t derive_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * 0x4553ull; /* "ES" */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static esm_status unknown_strategy(const char *name, esm_err *err)
{
    char list[256] = "";
    size_t len = 0;
    const char *const *names = esm_es_strategy_names();
    for (int i = 0; names[i] && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    return esm_fail_field(err, ESM_ENOTFOUND, "strategy", "strategy '%s' is unknown: valid strategies are %s", name,
                          list);
}

static esm_status check_es_config(const esm_train_config *c, const esm_es_config *ec, esm_err *err)
{
    if (c->pop < 2)
        return esm_fail_field(err, ESM_EINVAL, "pop", "pop %d: ES needs a population of at least 2 to rank members",
                              c->pop);
    /* Per-member buffers are sized 3 * pop in int arithmetic (and every member is scored each
     * generation): refuse absurd populations here, before anything is allocated. */
    if (c->pop > ESM_MAX_POP)
        return esm_fail_field(err, ESM_EINVAL, "pop", "pop %d is above the largest population esmeta runs (%d)",
                              c->pop, ESM_MAX_POP);
    if (ec->antithetic && c->pop % 2)
        return esm_fail_field(err, ESM_EINVAL, "pop", "pop %d is odd but %s samples antithetic pairs: use an even pop "
                              "(e.g. %d)",
                        c->pop, c->strategy, c->pop + 1);
    if (!(c->sigma > 0) || !isfinite(c->sigma))
        return esm_fail_field(err, ESM_EINVAL, "sigma", "sigma %g must be a positive number (try 0.02)",
                              (double)c->sigma);
    unsigned caps = esm_es_capabilities(c->strategy);
    if (c->sigma_halve_every < 0 || (c->sigma_halve_every > 0 && !(caps & ESM_ES_CAN_SCHEDULE_SIGMA)))
        return esm_fail_field(err, ESM_EINVAL, "sigma_halve_every", "sigma_halve_every %lld: give 0 (fixed sigma) or, "
                              "for openai-es, a positive number of generations (%s adapts its own sigma)",
                              (long long)c->sigma_halve_every, c->strategy);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return esm_fail_field(err, ESM_EINVAL, "lr", "lr %g must be a positive number", (double)c->lr);
    if (c->episodes_per_gen < 1)
        return esm_fail_field(err, ESM_EINVAL, "episodes_per_gen", "episodes_per_gen %d: score members on at least "
                              "one episode", c->episodes_per_gen);
    if (c->centre_every < 0)
        return esm_fail_field(err, ESM_EINVAL, "centre_every", "centre_every %d must be 0 (never) or positive",
                              c->centre_every);
    return ESM_OK;
}

static esm_status make_es(esm_trainer *t, es_state *s, esm_err *err)
{
    const esm_train_config *c = &t->cfg;
    esm_es_config ec;
    if (esm_es_config_init(&ec, c->strategy, t->net.n_params, NULL) != ESM_OK)
        return unknown_strategy(c->strategy, err);
    esm_status st = check_es_config(c, &ec, err);
    if (st != ESM_OK)
        return st;
    /* Only what the run's config names; every other setting keeps the strategy's default. */
    ec.popsize = c->pop;
    ec.shaping = (esm_es_shaping)c->shaping;
    ec.seed = derive_seed(c->seed);
    ec.sigma0 = c->sigma;
    /* ClipUp's speed cap keeps the strategy's ratio to the rate (pgpe: max_speed = 2 lr), as a
     * schedule's esm_es_set_lr keeps it; a cap left at the default rate's would never bind.
     * Checkpoints from before (es_rules 0) keep the rules they were trained under. */
    if (c->es_rules >= 1)
        ec.optim.max_speed *= c->lr / ec.optim.lr;
    ec.optim.lr = c->lr;
    ec.optim.weight_decay = c->weight_decay;
    if (c->es_rules < 1 && !strcmp(c->strategy, "openai-es"))
        ec.optim.weight_decay = c->weight_decay * c->sigma; /* openai-es divides it by sigma again */
    st = esm_es_create(&s->es, &ec, t->params, err);
    if (st == ESM_OK) {
        s->es_bytes = esm_es_state_size(s->es);
        s->es_buf = malloc(s->es_bytes);
        if (!s->es_buf)
            st = esm_fail(err, ESM_ENOMEM, "out of memory for the ES state (%zu bytes)", s->es_bytes);
    }
    return st;
}

static esm_status alloc_buffers(esm_trainer *t, es_state *s, esm_err *err)
{
    const esm_train_config *c = &t->cfg;
    size_t p = (size_t)c->pop;
    s->fitness = malloc(p * sizeof(float));
    s->loss = malloc(p * sizeof(float));
    s->acc = malloc(p * sizeof(float));
    s->bn_new = malloc(t->net.n_bn * sizeof(float) + 1);
    s->scale = malloc(t->net.n_params * sizeof(float));
    s->eps = calloc((size_t)c->episodes_per_gen, sizeof *s->eps);
    if (!s->fitness || !s->loss || !s->acc || !s->bn_new || !s->scale || !s->eps)
        return esm_fail(err, ESM_ENOMEM, "out of memory for a population of %d", c->pop);
    esm_status st = ESM_OK;
    for (int j = 0; j < c->episodes_per_gen && st == ESM_OK; j++)
        st = esm_episode_init(&s->eps[j], t->ds, c->shape, err);
    esm_episode_shape sh = c->shape;
    if (st == ESM_OK && c->stream_chunk > 0)
        st = esm_protonet_stream_create(&t->net, sh.way, c->stream_chunk, &s->centre_stream, err);
    else if (st == ESM_OK)
        st = esm_protonet_ws_create(&t->net, sh.way, sh.shot, sh.way * sh.query, 0, &s->centre_ws, err);
    if (st == ESM_OK)
        st = esm_popeval_open(c->device, &t->net, sh, c->pop, c->stream_chunk, 0, &s->pe, err);
    return st;
}

static esm_status es_init(esm_trainer *t, esm_err *err)
{
    es_state *s = calloc(1, sizeof *s);
    if (!s)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    t->impl = s;
    esm_status st = make_es(t, s, err);
    return st == ESM_OK ? alloc_buffers(t, s, err) : st;
}

/* The centre's mean loss and accuracy over the generation's episodes (as the members are
 * scored, but in `mode`). */
static esm_status score(const esm_trainer *t, const es_state *s, const float *params, float *bn, esm_bn_mode mode,
                        float *loss, float *acc, esm_err *err)
{
    return esm_episodes_score(&t->net, s->eps, t->cfg.episodes_per_gen, params, bn, mode, s->centre_ws,
                              s->centre_stream, loss, acc, err);
}

/* Fills s->loss, s->acc and s->fitness for members [lo, hi) (this rank's slice) through the
 * backend; the rest of the population arrives in the exchange. */
static esm_status evaluate_members(esm_trainer *t, es_state *s, int lo, int hi, esm_err *err)
{
    if (hi <= lo)
        return ESM_OK;
    esm_popeval_job job = {.eps = s->eps, .n_eps = t->cfg.episodes_per_gen, .begin = lo, .count = hi - lo};
    esm_es_population_get(s->es, s->scale, &job.pop);
    return esm_popeval_evaluate(&s->pe, &job, s->loss + lo, s->acc + lo, s->fitness + lo, err);
}

/* Running statistics of the new centre (into s->bn_new) and, when due, its evaluation-mode
 * loss and accuracy. Fails if the centre is not finite. */
static esm_status follow_centre(esm_trainer *t, es_state *s, const float *centre, esm_train_stats *stats,
                                esm_err *err)
{
    int64_t gen = t->done + 1;
    memcpy(s->bn_new, t->bn_running, t->net.n_bn * sizeof(float));
    float l, a;
    esm_status st = score(t, s, centre, s->bn_new, ESM_BN_TRAIN, &l, &a, err);
    if (st == ESM_OK &&
        (!isfinite(l) || !esm_all_finite(centre, t->net.n_params) || !esm_all_finite(s->bn_new, t->net.n_bn)))
        st = ESM_ENONFINITE;
    if (st == ESM_ENONFINITE)
        return esm_fail_field(err, ESM_ENONFINITE, "lr", "generation %lld: the new centre network is not finite; the "
                              "update was not applied; try a smaller lr or sigma", (long long)gen);
    if (st != ESM_OK || t->cfg.centre_every <= 0 || gen % t->cfg.centre_every)
        return st;
    stats->has_centre = 1;
    return score(t, s, centre, s->bn_new, ESM_BN_EVAL, &stats->centre_loss, &stats->centre_acc, err);
}

/* The step's report; member means are taken in member order over the finite members. */
static void fill_stats(const esm_trainer *t, const es_state *s, const esm_es_report *rep, esm_train_stats *stats)
{
    const esm_train_config *c = &t->cfg;
    double ls = 0, as = 0;
    int n = 0;
    for (int i = 0; i < c->pop; i++)
        if (isfinite(s->fitness[i]))
            ls += s->loss[i], as += s->acc[i], n++;
    stats->loss = n ? (float)(ls / n) : NAN;
    stats->acc = n ? (float)(as / n) : NAN;
    stats->lr = esm_lr_at(c, t->done);
    stats->images = (int64_t)c->pop * c->episodes_per_gen * c->shape.way * (c->shape.shot + c->shape.query);
    stats->fitness_mean = rep->fitness_mean;
    stats->fitness_max = rep->fitness_max;
    stats->update_norm = rep->update_norm;
    stats->sigma = rep->sigma_mean;
    stats->n_nonfinite = rep->n_nonfinite;
}

/* Sizes the exchange buffers for the current rank count. */
static esm_status ensure_exchange(const esm_trainer *t, es_state *s, esm_err *err)
{
    int n = esm_dist_size(t->dist), pop = t->cfg.pop;
    if (s->x_ranks == n)
        return ESM_OK;
    free(s->send), free(s->recv), free(s->counts);
    s->send = malloc((size_t)(1 + 3 * (pop / n + 1)) * sizeof(float));
    s->recv = malloc((size_t)(n + 3 * pop) * sizeof(float));
    s->counts = malloc((size_t)n * sizeof(int));
    s->x_ranks = 0;
    if (!s->send || !s->recv || !s->counts)
        return esm_fail(err, ESM_ENOMEM, "out of memory for the member exchange of %d ranks", n);
    for (int r = 0; r < n; r++) {
        int lo, hi;
        esm_dist_slice(pop, r, n, &lo, &hi);
        s->counts[r] = 1 + 3 * (hi - lo);
    }
    s->x_ranks = n;
    return ESM_OK;
}

/* Every rank's member numbers into s->fitness/loss/acc; own_st is this rank's evaluation
 * status. Fails on every rank if any rank failed. */
static esm_status exchange_members(esm_trainer *t, es_state *s, esm_status own_st, esm_err *err)
{
    int n = esm_dist_size(t->dist), me = esm_dist_rank(t->dist), lo, hi;
    esm_dist_slice(t->cfg.pop, me, n, &lo, &hi);
    s->send[0] = (float)own_st;
    for (int i = lo; i < hi; i++) {
        float *b = s->send + 1 + 3 * (i - lo);
        b[0] = s->fitness[i], b[1] = s->loss[i], b[2] = s->acc[i];
    }
    esm_status st = esm_dist_allgather_f32(t->dist, s->send, s->recv, s->counts, err);
    if (st != ESM_OK)
        return st;
    const float *p = s->recv;
    for (int r = 0; r < n; p += s->counts[r], r++) {
        esm_dist_slice(t->cfg.pop, r, n, &lo, &hi);
        if (p[0] != (float)ESM_OK && own_st == ESM_OK)
            return esm_fail(err, ESM_EDIST, "generation %lld: rank %d failed to score its members (%s; its own "
                            "message is on its stderr)", (long long)t->done + 1, r, esm_status_name((esm_status)p[0]));
        for (int i = lo; i < hi; i++) {
            const float *b = p + 1 + 3 * (i - lo);
            s->fitness[i] = b[0], s->loss[i] = b[1], s->acc[i] = b[2];
        }
    }
    return own_st;
}

static esm_status es_step(esm_trainer *t, esm_train_stats *stats, esm_err *err)
{
    es_state *s = t->impl;
    const esm_train_config *c = &t->cfg;
    int lo, hi;
    esm_dist_slice(c->pop, esm_dist_rank(t->dist), esm_dist_size(t->dist), &lo, &hi);
    int nt = omp_get_max_threads() < c->pop ? omp_get_max_threads() : c->pop;
    esm_status st = ensure_exchange(t, s, err);
    if (st != ESM_OK)
        return st;
    if (c->sigma_halve_every > 0 && (st = esm_es_set_sigma(s->es, esm_sigma_at(c, t->done), err)) != ESM_OK)
        return st;
    uint64_t first = (uint64_t)t->done * (uint64_t)c->episodes_per_gen;
    for (int j = 0; j < c->episodes_per_gen; j++)
        esm_episode_sample(&s->eps[j], t->ds, t->sp, c->seed, first + (uint64_t)j);
    double t0 = now_s();
    st = evaluate_members(t, s, lo, hi, err);
    stats->eval_s = now_s() - t0;
    st = exchange_members(t, s, st, err);
    if (st == ESM_OK)
        st = esm_es_save(s->es, s->es_buf, s->es_bytes, err);
    esm_es_report rep;
    if (st == ESM_OK)
        st = esm_es_set_lr(s->es, esm_lr_at(c, t->done), err);
    t0 = now_s();
    double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), comm0 = esm_dist_comm_seconds(t->dist);
    esm_es_comm comm = es_comm(t);
    if (st == ESM_OK)
        st = esm_es_tell_sharded(s->es, s->fitness, t->sharded ? &comm : NULL, &rep, err);
    stats->update_s = now_s() - t0 - (esm_dist_comm_seconds(t->dist) - comm0);
    stats->update_cpu_s = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    if (st == ESM_ENONFINITE)
        return esm_fail_field(err, ESM_ENONFINITE, "sigma", "generation %lld: all %d members' losses are NaN or "
                              "infinite; the update was not applied; try a smaller sigma or lr", (long long)t->done + 1,
                              c->pop);
    if (st != ESM_OK)
        return st;
    /* Inside a team of nt threads BLAS runs single-threaded, as it does for the members, so no
     * BLAS thread split can make the centre depend on the thread count. */
#pragma omp parallel num_threads(nt)
#pragma omp single
    st = follow_centre(t, s, esm_es_mean(s->es), stats, err);
    if (st != ESM_OK) {
        /* The snapshot came from this very object, so loading it cannot fail. */
        esm_es_load(s->es, s->es_buf, s->es_bytes, NULL);
        stats->has_centre = 0;
        return st;
    }
    memcpy(t->params, esm_es_mean(s->es), t->net.n_params * sizeof(float));
    memcpy(t->bn_running, s->bn_new, t->net.n_bn * sizeof(float));
    fill_stats(t, s, &rep, stats);
    return ESM_OK;
}

static int es_sections(const esm_trainer *t, esm_ckpt_section *out, int cap)
{
    es_state *s = t->impl;
    if (cap < 1 || esm_es_save(s->es, s->es_buf, s->es_bytes, NULL) != ESM_OK)
        return 0;
    out[0] = (esm_ckpt_section){"es_state", s->es_buf, s->es_bytes};
    return 1;
}

static esm_status es_restore(esm_trainer *t, const esm_ckpt *c, esm_err *err)
{
    es_state *s = t->impl;
    const void *buf;
    esm_status st = esm_ckpt_get(c, "es_state", s->es_bytes, &buf, NULL, err);
    if (st == ESM_OK)
        st = esm_es_load(s->es, buf, s->es_bytes, err);
    if (st == ESM_OK && (int64_t)esm_es_generation(s->es) != t->done)
        st = esm_fail(err, ESM_EFORMAT, "checkpoint %s: its ES state is at generation %u but the run at %lld; the "
                      "file is inconsistent, resume from another checkpoint", c->path, esm_es_generation(s->es),
                      (long long)t->done);
    return st;
}

/* With MPI and several GPUs, each rank moves to the GPU of its local rank (modulo the count) rather
 * than all crowding device 0. */
static esm_status es_dist_changed(esm_trainer *t, esm_err *err)
{
    es_state *s = t->impl;
    int n = esm_popeval_cuda_devices();
    if (strncmp(t->cfg.device, "cuda", 4) || n < 2 || esm_dist_local_rank(t->dist) % n == 0)
        return ESM_OK;
    esm_popeval_close(&s->pe);
    return esm_popeval_open(t->cfg.device, &t->net, t->cfg.shape, t->cfg.pop, t->cfg.stream_chunk,
                            esm_dist_local_rank(t->dist), &s->pe, err);
}

static void es_free(esm_trainer *t)
{
    es_state *s = t->impl;
    esm_es_free(s->es);
    esm_popeval_close(&s->pe);
    esm_protonet_ws_free(s->centre_ws);
    esm_protonet_stream_free(s->centre_stream);
    for (int j = 0; s->eps && j < t->cfg.episodes_per_gen; j++)
        esm_episode_free(&s->eps[j]);
    free(s->scale), free(s->eps), free(s->fitness), free(s->loss), free(s->acc), free(s->bn_new), free(s->es_buf);
    free(s->send), free(s->recv), free(s->counts);
    free(s);
    t->impl = NULL;
}

const esm_trainer_ops esm_es_trainer_ops = {
    .name = "es",
    .init = es_init,
    .step = es_step,
    .sections = es_sections,
    .restore = es_restore,
    .free = es_free,
    .dist_changed = es_dist_changed,
};
