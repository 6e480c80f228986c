/* esmeta prepare: raw Omniglot, or a user's own class-folder tree -> one cache file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static void help(void)
{
    printf("usage: esmeta prepare [--data PATH] [--out FILE]\n"
           "       esmeta prepare --images DIR [--channels 1|3] [--size HxW] [--invert] [--no-normalize]\n"
           "                      [--csv FILE ... | --split-ratio A,B,C [--seed S]] --out FILE\n"
           "  --data PATH     Omniglot folder (zips or extracted) (default: $ESMETA_DATA, ../shared/data/omniglot, ...)\n"
           "  --out FILE      cache file to write (default " CLI_DEFAULT_CACHE "); written atomically\n"
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
    prepare_args a;
    char msg[600];
    int rc = cli_args_status("prepare", cli_args_prepare(argc, argv, &a, msg, sizeof msg), msg, help);
    if (rc >= 0)
        return rc;
    const char *data = a.data, *out = a.out, *images = a.images;
    const char *const *csvs = a.csv.files;
    int n_csv = a.csv.n, have_ratio = a.have_ratio;
    esm_images_opts io = a.io;
    if (!strcmp(out, CLI_DEFAULT_CACHE))
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
    if (images ? !cli_prepare_images(images, csvs, n_csv, &io, have_ratio ? a.ratio : NULL, a.seed, out, &ds, &err)
               : !cli_load_dataset(data, &ds, &err))
        return cli_error(&err);
    if (!images && ((have_ratio && esm_dataset_split_by_ratio(ds, a.ratio, a.seed, &err) != ESM_OK) ||
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
