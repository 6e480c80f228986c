/* esmeta eval: the standard few-shot protocol on a saved model, as one JSON line. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: esmeta eval --checkpoint FILE [--data PATH] [--split NAME] [--way N] [--shot K] [--query Q]\n"
           "                   [--episodes E] [--seed S] [--threads T]\n"
           "  mean accuracy over E seeded episodes (evaluation-mode batch norm) with the 95%% confidence\n"
           "  interval 1.96*std/sqrt(E). The same seed gives the same episodes, so models can be compared\n"
           "  on identical tasks. Defaults: --split test --way 5 --shot 5 --query 15 --episodes 1000 --seed 0\n");
}

int cmd_eval(int argc, char **argv)
{
    eval_args a;
    char msg[600];
    int rc = cli_args_status("eval", cli_args_eval(argc, argv, &a, msg, sizeof msg), msg, help);
    if (rc >= 0)
        return rc;
    const char *data = a.data, *split = a.split, *ckpt = a.ckpt;
    long way = a.way, shot = a.shot, query = a.query, episodes = a.episodes, threads = a.threads;
    uint64_t seed = a.seed;
    esm_err err = {0};
    esm_model m = {0};
    esm_dataset *ds = NULL;
    esm_split sp = {0};
    esm_eval_result r;
    esm_episode_shape shape = {(int)way, (int)shot, (int)query};
    double t0 = cli_now();
    rc = 0;
    if (esm_model_load(ckpt, &m, &err) != ESM_OK || !cli_load_dataset(data, &ds, &err) ||
        esm_split_get(ds, split, &sp, &err) != ESM_OK ||
        esm_evaluate(&m.net, m.params, m.bn_running, ds, &sp, shape, (int)episodes, seed, (int)threads, &r, &err) !=
            ESM_OK) {
        rc = cli_error(&err);
    } else {
        printf("{\"checkpoint\":");
        cli_json_str(stdout, ckpt);
        printf(",\"trainer\":\"%s\",\"split\":", esm_trainer_kind_name(m.cfg.trainer));
        cli_json_str(stdout, split);
        printf(",\"way\":%d,\"shot\":%d,\"query\":%d,\"episodes\":%d,\"seed\":%llu,\"accuracy\":%.6f,\"ci95\":%.6f,"
               "\"loss\":%.6f,\"seconds\":%.2f}\n",
               shape.way, shape.shot, shape.query, r.episodes, (unsigned long long)seed, r.mean_acc, r.ci95,
               r.mean_loss, cli_now() - t0);
    }
    esm_split_free(&sp);
    esm_dataset_free(ds);
    esm_model_free(&m);
    return rc;
}
