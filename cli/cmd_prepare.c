/* esmeta prepare: raw Omniglot, or a user's own class-folder tree -> one cache file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

#define DEFAULT_CACHE "data/omniglot.esmc"

static void help(void)
{
    printf("usage: esmeta prepare [--data PATH] [--out FILE]\n"
           "       esmeta prepare --images DIR [--channels 1|3] [--size HxW] [--invert] [--no-normalize]\n"
           "                      [--csv FILE ... | --split-ratio A,B,C [--seed S]] --out FILE\n"
           "  --data PATH     Omniglot folder (zips or extracted) (default: $ESMETA_DATA, ../shared/data/omniglot, ...)\n"
           "  --out FILE      cache file to write (default " DEFAULT_CACHE "); written atomically\n"
           "  --images DIR    your own images: every folder below DIR holding .png/.jpg/.jpeg files is a class\n"
           "  --channels N    1 (grey) or 3 (RGB; default)\n"
           "  --size HxW      resized to H x W (default 84x84): area averaging when shrinking, bilinear when enlarging\n"
           "  --invert        store 255 - value (dark ink on white, as Omniglot is prepared)\n"
           "  --no-normalize  episodes see pixel/255; by default each channel is standardised by the set's\n"
           "                  mean and std (stored in the cache)\n"
           "  --csv FILE      mini-ImageNet style: FILE (rows filename,label) is a split named after it\n"
           "                  (train.csv -> train), of images in --images DIR; repeat for each split\n"
           "  --split-ratio A,B,C  splits train, val, test of those fractions of the classes, drawn with --seed S\n"
           "                  (default 0); the lists are also written to FILE.train.txt, FILE.val.txt, FILE.test.txt\n");
}

static int parse_size(const char *v, esm_image_shape *s)
{
    char *end;
    long h = strtol(v, &end, 10);
    if (end == v || (*end != 'x' && *end != 'X'))
        return 0;
    const char *w_at = end + 1;
    long w = strtol(w_at, &end, 10);
    if (end == w_at || *end || h < 1 || w < 1 || h > 4096 || w > 4096)
        return 0;
    s->height = (int)h, s->width = (int)w;
    return 1;
}

static int parse_ratio(const char *v, double r[3])
{
    char tail;
    return sscanf(v, "%lf,%lf,%lf%c", &r[0], &r[1], &r[2], &tail) == 3;
}

/* The chosen split lists next to the cache, so that the split can be read, reused or edited. */
static int write_split_files(const esm_dataset *ds, const char *out)
{
    for (int i = 0; i < ds->n_splits; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s.%s.txt", out, ds->split_names[i]);
        FILE *f = fopen(path, "w");
        if (!f || fputs(ds->split_texts[i], f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "esmeta: cannot write split list %s\n", path);
            return 0;
        }
    }
    return 1;
}

int cmd_prepare(int argc, char **argv)
{
    const char *data = NULL, *out = DEFAULT_CACHE, *images = NULL;
    const char *csvs[64];
    int n_csv = 0;
    double ratio[3];
    int have_ratio = 0;
    uint64_t seed = 0;
    esm_images_opts io = {.shape = {.channels = 3, .height = 84, .width = 84}, .normalize = 1};
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'}, {"out", required_argument, 0, 'o'}, {"images", required_argument, 0, 'i'},
        {"channels", required_argument, 0, 'c'}, {"size", required_argument, 0, 's'}, {"invert", no_argument, 0, 'v'}, {"no-normalize", no_argument, 0, 'N'},
        {"csv", required_argument, 0, 'C'},
        {"split-ratio", required_argument, 0, 'r'}, {"seed", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'i': images = optarg; break;
        case 'v': io.shape.invert = 1; break;
        case 'N': io.normalize = 0; break;
        case 'C':
            if (n_csv == 64)
                return cli_usage_error("prepare", "more than 64 --csv files");
            csvs[n_csv++] = optarg;
            break;
        case 'r':
            if (!(have_ratio = parse_ratio(optarg, ratio)))
                return cli_usage_error("prepare", "--split-ratio '%s': expected three fractions, e.g. 0.7,0.1,0.2",
                                       optarg);
            break;
        case 'S':
            if (!cli_parse_u64("prepare", "--seed", optarg, &seed))
                return 2;
            break;
        case 'c':
            if (strcmp(optarg, "1") && strcmp(optarg, "3"))
                return cli_usage_error("prepare", "--channels '%s': use 1 (grey) or 3 (RGB)", optarg);
            io.shape.channels = atoi(optarg);
            break;
        case 's':
            if (!parse_size(optarg, &io.shape))
                return cli_usage_error("prepare", "--size '%s': expected HxW, e.g. 84x84 (each 1..4096)", optarg);
            break;
        case 'h': help(); return 0;
        default: return cli_usage_error("prepare", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("prepare", "unexpected argument '%s'", argv[optind]);
    if (n_csv && !images)
        return cli_usage_error("prepare", "--csv needs --images DIR, the folder its file names are in");
    if (n_csv && have_ratio)
        return cli_usage_error("prepare", "--csv files are the splits already; drop --split-ratio");
    if (images && data)
        return cli_usage_error("prepare", "--images and --data are two different sources; give one");
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
    /* Users' sets are streamed into the cache (they may not fit in memory); Omniglot is small. */
    if (images ? !cli_prepare_images(images, csvs, n_csv, &io, have_ratio ? ratio : NULL, seed, out, &ds, &err)
               : !cli_load_dataset(data, &ds, &err))
        return cli_error(&err);
    if (!images && ((have_ratio && esm_dataset_split_by_ratio(ds, ratio, seed, &err) != ESM_OK) ||
                    esm_cache_write(ds, out, &err) != ESM_OK)) {
        esm_dataset_free(ds);
        return cli_error(&err);
    }
    if (have_ratio && !write_split_files(ds, out)) {
        esm_dataset_free(ds);
        return 1;
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
