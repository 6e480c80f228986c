/* The few-shot evaluation protocol: mean accuracy over seeded test episodes with a 95% CI. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta/protonet.h"
#include "esmeta/train.h"

/* Per-thread episode buffers; episodes are pure functions of (seed, index), so the split of
 * episodes over threads cannot change any episode's result. */
typedef struct {
    esm_protonet_ws *ws;
    esm_episode ep;
} eval_slot;

static esm_status eval_episode(const esm_net *net, const float *params, const float *bn, const esm_dataset *ds,
                               const esm_split *sp, uint64_t seed, int e, eval_slot *slot, float *acc, float *loss,
                               esm_err *err)
{
    esm_episode_shape s = slot->ep.shape;
    esm_episode_sample(&slot->ep, ds, sp, seed, (uint64_t)e);
    /* Evaluation mode reads bn_running and never writes it; the cast only satisfies the API. */
    return esm_protonet_loss(net, params, (float *)bn, ESM_BN_EVAL, slot->ws, slot->ep.support, s.way, s.shot,
                             slot->ep.query, slot->ep.query_label, s.way * s.query, loss, acc, err);
}

esm_status esm_evaluate(const esm_net *net, const float *params, const float *bn_running, const esm_dataset *ds,
                        const esm_split *sp, esm_episode_shape shape, int n_episodes, uint64_t seed, int threads,
                        esm_eval_result *out, esm_err *err)
{
    if (n_episodes < 1)
        return esm_fail_field(err, ESM_EINVAL, "n_episodes", "n_episodes %d: evaluate at least one episode",
                              n_episodes);
    esm_status st = esm_episode_check(sp, shape, err);
    if (st == ESM_OK)
        st = esm_blas_check_single_thread(err);
    if (st != ESM_OK)
        return st;
    int total = threads > 0 ? threads : omp_get_max_threads(), nt = total < n_episodes ? total : n_episodes;
    float *acc = calloc((size_t)n_episodes, sizeof *acc), *loss = calloc((size_t)n_episodes, sizeof *loss);
    eval_slot *slots = calloc((size_t)nt, sizeof *slots);
    esm_status *stat = calloc((size_t)nt, sizeof *stat);
    esm_err *errs = calloc((size_t)nt, sizeof *errs);
    if (!acc || !loss || !slots || !stat || !errs)
        st = esm_fail(err, ESM_ENOMEM, "out of memory");
    for (int i = 0; i < nt && st == ESM_OK; i++) {
        st = esm_protonet_ws_create(net, shape.way, shape.shot, shape.way * shape.query, 0, &slots[i].ws, err);
        /* fewer episodes than threads: the spare threads split each episode's images */
        if (st == ESM_OK)
            st = esm_protonet_ws_set_threads(slots[i].ws, total / nt, err);
        if (st == ESM_OK)
            st = esm_episode_init(&slots[i].ep, ds, shape, err);
    }
    if (st == ESM_OK) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int e = 0; e < n_episodes; e++) {
            int tid = omp_get_thread_num();
            if (stat[tid] == ESM_OK)
                stat[tid] = eval_episode(net, params, bn_running, ds, sp, seed, e, &slots[tid], &acc[e], &loss[e],
                                         &errs[tid]);
        }
        for (int i = 0; i < nt && st == ESM_OK; i++)
            if (stat[i] != ESM_OK) {
                st = stat[i];
                if (err)
                    *err = errs[i];
            }
    }
    if (st == ESM_OK) {
        double sum = 0, sq = 0, ls = 0;
        for (int e = 0; e < n_episodes; e++)
            sum += acc[e], ls += loss[e];
        double mean = sum / n_episodes;
        for (int e = 0; e < n_episodes; e++)
            sq += (acc[e] - mean) * (acc[e] - mean);
        double sd = n_episodes > 1 ? sqrt(sq / (n_episodes - 1)) : 0.0;
        out->mean_acc = mean;
        out->ci95 = 1.96 * sd / sqrt((double)n_episodes);
        out->mean_loss = ls / n_episodes;
        out->episodes = n_episodes;
    }
    for (int i = 0; slots && i < nt; i++) {
        esm_protonet_ws_free(slots[i].ws);
        esm_episode_free(&slots[i].ep);
    }
    free(slots), free(stat), free(errs), free(acc), free(loss);
    return st;
}
