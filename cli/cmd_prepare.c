/* esmeta prepare: raw Omniglot -> one cache file. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

#define DEFAULT_CACHE "data/omniglot.esmc"

static void help(void)
{
    printf("usage: esmeta prepare [--data PATH] [--out FILE]\n"
           "  --data PATH  Omniglot folder (zips or extracted) (default: $ESMETA_DATA, ../shared/data/omniglot, ...)\n"
           "  --out FILE   cache file to write (default " DEFAULT_CACHE "); written atomically\n");
}

int cmd_prepare(int argc, char **argv)
{
    const char *data = NULL, *out = DEFAULT_CACHE;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'h': help(); return 0;
        default: return cli_usage_error("prepare", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("prepare", "unexpected argument '%s'", argv[optind]);
    if (!strcmp(out, DEFAULT_CACHE))
        mkdir("data", 0755);
    /* Fail before the slow part if the result could not be written. */
    char folder[4096];
    const char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(folder, sizeof folder, ".");
    else
        snprintf(folder, sizeof folder, "%.*s", slash == out ? 1 : (int)(slash - out), out);
    struct stat st;
    if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "esmeta: --out %s: folder %s does not exist; create it or choose another path\n", out, folder);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    esm_err err = {0};
    esm_dataset *ds = NULL;
    if (!cli_load_dataset(data, &ds, &err))
        return cli_error(&err);
    if (esm_cache_write(ds, out, &err) != ESM_OK) {
        esm_dataset_free(ds);
        return cli_error(&err);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("{\"cache\":");
    cli_json_str(stdout, out);
    printf(",\"characters\":%d,\"images\":%zu,\"height\":%d,\"width\":%d,\"channels\":%d,\"splits\":%d,\"seconds\":%.3f}\n",
           ds->n_chars, ds->n_total, ds->height, ds->width, ds->channels, ds->n_splits,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    esm_dataset_free(ds);
    return 0;
}
