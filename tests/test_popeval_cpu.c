/* The CPU population evaluator draws each antithetic pair's noise once and scores both members
 * from it; every member must still be the one the ES object defines (esm_es_member_range), also
 * when a job's range cuts a pair (a rank's share may start or end on an odd member). */
#include <stdlib.h>
#include <string.h>

#include "es_helpers.h"
#include "esmeta.h"
#include "harness.h"
#include "popeval/popeval.h"

enum { WAY = 3, SHOT = 2, QUERY = 2, POP = 8 };

TEST(popeval_cpu_shared_pair_noise_gives_each_members_own_fitness)
{
    esm_err err = {0};
    es_synth_episode syn;
    REQUIRE_OK(es_synth_episode_make(&syn, WAY, SHOT, QUERY, 21, &err), &err);
    const esm_net net = syn.net;
    const esm_episode ep = syn.ep;
    size_t n = net.n_params;
    float *mean = malloc(n * sizeof *mean), *scale = malloc(n * sizeof *scale), *theta = malloc(n * sizeof *theta);
    REQUIRE(mean && scale && theta);
    esm_net_init_params(&net, 4, mean, NULL);
    for (size_t j = 0; j < n; j++)
        scale[j] = 0.05f + 0.001f * (float)(j % 7);
    esm_protonet_ws *ws = NULL;
    REQUIRE_OK(esm_protonet_ws_create(&net, WAY, SHOT, WAY * QUERY, 0, &ws, &err), &err);
    /* the members' fitness one by one, built as esm_es_member_range builds them */
    float want[POP];
    for (int i = 0; i < POP; i++) {
        esm_es_noise_range(99, 7, i, 1, 0, n, theta);
        for (size_t j = 0; j < n; j++)
            theta[j] = mean[j] + scale[j] * theta[j];
        float l, a;
        REQUIRE_OK(esm_episodes_score(&net, &ep, 1, theta, NULL, ESM_BN_BATCH, ws, NULL, &l, &a, &err), &err);
        want[i] = -l;
    }
    void *cpu = NULL;
    REQUIRE_OK(esm_popeval_cpu_ops.create(&net, ep.shape, POP, NULL, &cpu, &err), &err);
    int ranges[3][2] = {{0, POP}, {1, 5}, {3, 4}}; /* whole, cut at both ends, a lone odd member */
    for (int r = 0; r < 3; r++) {
        int begin = ranges[r][0], count = ranges[r][1];
        esm_popeval_job job = {.eps = &ep, .n_eps = 1, .begin = begin, .count = count,
                               .pop = {.mean = mean, .scale = scale, .dim = net.n_params, .popsize = begin + count,
                                       .seed = 99, .gen = 7, .antithetic = 1}};
        float loss[POP], acc[POP], fit[POP];
        REQUIRE_OK(esm_popeval_cpu_ops.evaluate(cpu, &job, loss, acc, fit, &err), &err);
        for (int k = 0; k < count; k++)
            CHECKF(memcmp(&fit[k], &want[begin + k], sizeof fit[k]) == 0, "range %d: member %d fitness %.9g, want %.9g",
                   r, begin + k, fit[k], want[begin + k]);
    }
    esm_popeval_cpu_ops.free(cpu);
    esm_protonet_ws_free(ws);
    free(mean), free(scale), free(theta);
}
