/* esmeta info: one JSON line describing a split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: esmeta info [--data PATH] [--split NAME]\n"
           "  --data PATH   Omniglot folder or cache file (default: $ESMETA_DATA, ../shared/data/omniglot, data/omniglot)\n"
           "  --split NAME  train, val, trainval, test (Vinyals), background, evaluation (Lake), or a split file;\n"
           "                default trainval\n");
}

int cmd_info(int argc, char **argv)
{
    info_args a;
    char msg[600];
    int rc = cli_args_status("info", cli_args_info(argc, argv, &a, msg, sizeof msg), msg, help);
    if (rc >= 0)
        return rc;
    const char *data = a.data, *split = a.split;
    esm_err err = {0};
    esm_dataset *ds = NULL;
    if (!cli_load_dataset(data, &ds, &err))
        return cli_error(&err);
    esm_split sp;
    if (esm_split_get(ds, split, &sp, &err) != ESM_OK) {
        esm_dataset_free(ds);
        return cli_error(&err);
    }
    size_t images = 0;
    int chars = 0;
    for (int i = 0; i < sp.n_classes; i++)
        images += (size_t)sp.classes[i].n_images;
    /* Count distinct characters: classes of one character are not necessarily adjacent. */
    unsigned char *seen = calloc((size_t)ds->n_chars, 1);
    for (int i = 0; seen && i < sp.n_classes; i++)
        chars += !seen[sp.classes[i].chr]++;
    free(seen);
    printf("{\"split\":");
    cli_json_str(stdout, split);
    printf(",\"classes\":%d,\"characters\":%d,\"images\":%zu,\"min_images_per_class\":%d,\"height\":%d,\"width\":%d,"
           "\"channels\":%d",
           sp.n_classes, chars, images, sp.min_images, ds->height, ds->width, ds->channels);
    /* what episodes see: the per-channel statistics they are standardised with, if any */
    printf(",\"normalize\":%s,\"mean\":[", ds->normalize ? "true" : "false");
    for (int c = 0; c < ds->channels; c++)
        printf("%s%.6g", c ? "," : "", ds->mean[c]);
    printf("],\"std\":[");
    for (int c = 0; c < ds->channels; c++)
        printf("%s%.6g", c ? "," : "", ds->std[c]);
    printf("],\"inverted\":%s}\n", ds->inverted < 0 ? "null" : ds->inverted ? "true" : "false");
    esm_split_free(&sp);
    esm_dataset_free(ds);
    return 0;
}
