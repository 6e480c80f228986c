/* esmeta eval: the standard few-shot protocol on a saved model, as one JSON line. */
#include <getopt.h>
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
    const char *data = NULL, *split = "test", *ckpt = NULL;
    long way = 5, shot = 5, query = 15, episodes = 1000, threads = 0;
    uint64_t seed = 0;
    static const struct option opts[] = {
        {"checkpoint", 1, 0, 'c'}, {"data", 1, 0, 'd'}, {"split", 1, 0, 's'}, {"way", 1, 0, 'w'},
        {"shot", 1, 0, 'k'}, {"query", 1, 0, 'q'}, {"episodes", 1, 0, 'e'}, {"seed", 1, 0, 'S'},
        {"threads", 1, 0, 't'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        int ok = 1;
        switch (c) {
        case 'c': ckpt = optarg; break;
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'w': ok = cli_parse_int("eval", "--way", optarg, -1000000, 1000000, &way); break;
        case 'k': ok = cli_parse_int("eval", "--shot", optarg, -1000000, 1000000, &shot); break;
        case 'q': ok = cli_parse_int("eval", "--query", optarg, -1000000, 1000000, &query); break;
        case 'e': ok = cli_parse_int("eval", "--episodes", optarg, 1, 100000000, &episodes); break;
        case 't': ok = cli_parse_int("eval", "--threads", optarg, 1, 4096, &threads); break;
        case 'S': ok = cli_parse_u64("eval", "--seed", optarg, &seed); break;
        case 'h': help(); return 0;
        default: return cli_usage_error("eval", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (!ok)
            return 2;
    }
    if (optind < argc)
        return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!ckpt)
        return cli_usage_error("eval", "--checkpoint FILE is required (a run's checkpoint.bin)");
    esm_err err = {0};
    esm_model m = {0};
    esm_dataset *ds = NULL;
    esm_split sp = {0};
    esm_eval_result r;
    esm_episode_shape shape = {(int)way, (int)shot, (int)query};
    double t0 = cli_now();
    int rc = 0;
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
