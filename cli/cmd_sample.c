/* esmeta sample: shows which classes and drawings an episode (seed, index) holds, as JSON.
 * Lets users check the sampler and compare runs without training anything. */
#include <getopt.h>
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
    const char *data = NULL, *split = "test";
    long way = 5, shot = 5, query = 15, count = 1;
    uint64_t seed = 0, first = 0;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"split", required_argument, 0, 's'}, {"way", required_argument, 0, 'w'},
        {"shot", required_argument, 0, 'k'}, {"query", required_argument, 0, 'q'}, {"seed", required_argument, 0, 'S'},
        {"episode", required_argument, 0, 'e'}, {"count", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        int ok = 1;
        switch (c) {
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'w': ok = cli_parse_int("sample", "--way", optarg, -1000000, 1000000, &way); break;
        case 'k': ok = cli_parse_int("sample", "--shot", optarg, -1000000, 1000000, &shot); break;
        case 'q': ok = cli_parse_int("sample", "--query", optarg, -1000000, 1000000, &query); break;
        case 'c': ok = cli_parse_int("sample", "--count", optarg, 1, 1000000, &count); break;
        case 'S': ok = cli_parse_u64("sample", "--seed", optarg, &seed); break;
        case 'e': ok = cli_parse_u64("sample", "--episode", optarg, &first); break;
        case 'h': help(); return 0;
        default: return cli_usage_error("sample", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (!ok)
            return 2;
    }
    if (optind < argc)
        return cli_usage_error("sample", "unexpected argument '%s'", argv[optind]);
    esm_err err = {0};
    esm_dataset *ds = NULL;
    esm_split sp = {0};
    esm_episode ep = {0};
    esm_episode_shape shape = {(int)way, (int)shot, (int)query};
    int rc = 0;
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
