/* esmeta sample: shows which classes and drawings an episode (seed, index) holds, as JSON.
 * Lets users check the sampler and compare runs without training anything. */
#include <stdio.h>

#include "cli.h"

static void help(void)
{
    printf("usage: esmeta sample [--data PATH] [--split NAME] [--way N] [--shot K] [--query Q] [--seed S]\n"
           "                     [--episode I] [--count C]\n"
           "  prints one JSON line per episode I..I+C-1: classes (Alphabet/characterNN/rotDDD) and the\n"
           "  drawing indices (0-based) of support and query images, class by class.\n"
           "  defaults: --split test --way 5 --shot 5 --query 15 --seed 0 --episode 0 --count 1\n");
}

static void print_episode(const esm_dataset *ds, const esm_split *sp, const esm_episode *ep, uint64_t index)
{
    esm_episode_shape s = ep->shape;
    printf("{\"episode\":%llu,\"classes\":[", (unsigned long long)index);
    for (int c = 0; c < s.way; c++) {
        esm_class k = sp->classes[ep->classes[c]];
        printf("%s\"%s/rot%03d\"", c ? "," : "", ds->names[k.chr], k.rot * 90);
    }
    printf("],\"support\":[");
    for (int c = 0; c < s.way; c++) {
        printf("%s[", c ? "," : "");
        for (int i = 0; i < s.shot; i++)
            printf("%s%d", i ? "," : "", ep->support_img[c * s.shot + i]);
        printf("]");
    }
    printf("],\"query\":[");
    for (int c = 0; c < s.way; c++) {
        printf("%s[", c ? "," : "");
        for (int i = 0; i < s.query; i++)
            printf("%s%d", i ? "," : "", ep->query_img[c * s.query + i]);
        printf("]");
    }
    printf("]}\n");
}

int cmd_sample(int argc, char **argv)
{
    sample_args a;
    char msg[600];
    int rc = cli_args_status("sample", cli_args_sample(argc, argv, &a, msg, sizeof msg), msg, help);
    if (rc >= 0)
        return rc;
    const char *data = a.data, *split = a.split;
    long way = a.way, shot = a.shot, query = a.query, count = a.count;
    uint64_t seed = a.seed, first = a.first;
    esm_err err = {0};
    esm_dataset *ds = NULL;
    esm_split sp = {0};
    esm_episode ep = {0};
    esm_episode_shape shape = {(int)way, (int)shot, (int)query};
    rc = 0;
    if (!cli_load_dataset(data, &ds, &err) || esm_split_get(ds, split, &sp, &err) != ESM_OK ||
        esm_episode_check(&sp, shape, &err) != ESM_OK || esm_episode_init(&ep, ds, shape, &err) != ESM_OK) {
        rc = cli_error(&err);
    } else {
        for (long i = 0; i < count; i++) {
            esm_episode_sample_indices(&ep, &sp, seed, first + (uint64_t)i);
            print_episode(ds, &sp, &ep, first + (uint64_t)i);
        }
    }
    esm_episode_free(&ep);
    esm_split_free(&sp);
    esm_dataset_free(ds);
    return rc;
}
