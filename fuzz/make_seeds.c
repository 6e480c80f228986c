/* Writes the seed corpus (fuzz/corpus/<harness>/seed-*) from real files the library produces:
 * a cache, trainer checkpoints (backprop and ES, width 4 so that they stay small), ES states of
 * every strategy after one generation, split files and one archive of real Omniglot PNGs.
 * Build and run from the repository root (fuzz/README.md); argv[1] is one Omniglot PNG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "esmeta.h"

static void die(const char *what, const esm_err *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static void put(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die(path, NULL);
}

static esm_dataset *tiny_dataset(void)
{
    static char *names[] = {"Latin/character01", "Latin/character02", "Greek/character01"};
    static uint8_t bg[] = {1, 1, 0};
    static int n_images[] = {2, 2, 2};
    static size_t first[] = {0, 2, 4};
    static uint8_t pixels[6 * 28 * 28];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i * 7 % 251);
    static esm_dataset ds = {.height = 28, .width = 28, .channels = 1, .n_chars = 3,
                             .names = names, .background = bg, .n_images = n_images,
                             .first = first, .n_total = 6, .pixels = pixels};
    return &ds;
}

static void write_ckpt(esm_dataset *ds, esm_trainer_kind kind, const char *path)
{
    esm_err err = {0};
    esm_split sp;
    if (esm_split_parse(ds, "Latin/character01/rot000\nLatin/character02/rot000\nGreek/character01/rot090\n",
                        "seed", &sp, &err) != ESM_OK)
        die("split", &err);
    esm_train_config cfg = esm_train_config_default(kind);
    cfg.net.width = 4;
    cfg.shape = (esm_episode_shape){2, 1, 1};
    cfg.steps = 2;
    cfg.pop = 4;
    cfg.episodes_per_step = 1;
    cfg.episodes_per_gen = 1;
    esm_trainer *t = NULL;
    if (esm_trainer_create(&cfg, ds, &sp, &t, &err) != ESM_OK || esm_trainer_step(t, NULL, &err) != ESM_OK ||
        esm_trainer_save(t, path, &err) != ESM_OK)
        die(path, &err);
    esm_trainer_free(t);
    esm_split_free(&sp);
}

static void write_es_states(void)
{
    const char *const *names = esm_es_strategy_names();
    for (int k = 0; names[k]; k++) {
        esm_err err = {0};
        esm_es_config cfg;
        esm_es *es = NULL;
        if (esm_es_config_init(&cfg, names[k], 8, &err) != ESM_OK)
            die(names[k], &err);
        cfg.popsize = 4;
        float fit[4] = {1, 2, 3, 4};
        if (esm_es_create(&es, &cfg, NULL, &err) != ESM_OK || esm_es_tell(es, fit, NULL, &err) != ESM_OK)
            die(names[k], &err);
        size_t n = esm_es_state_size(es);
        unsigned char *buf = malloc(n + 1);
        buf[0] = (unsigned char)k; /* the harness's strategy byte */
        if (esm_es_save(es, buf + 1, n, &err) != ESM_OK)
            die(names[k], &err);
        char path[256];
        snprintf(path, sizeof path, "fuzz/corpus/es_state/seed-%s", names[k]);
        put(path, buf, n + 1);
        free(buf);
        esm_es_free(es);
    }
}

/* Two drawings of the same PNG; cut > 0 keeps only its first cut bytes (a damaged image). */
static void write_zip(const char *png_path, long cut, const char *path)
{
    int zerr = 0;
    remove(path);
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_EXCL, &zerr);
    const char *entries[] = {"images_background/Latin/character01/0001_01.png",
                             "images_background/Latin/character02/0002_01.png"};
    for (int i = 0; za && i < 2; i++) {
        zip_source_t *s = zip_source_file(za, png_path, 0, cut > 0 ? cut : -1);
        if (!s || zip_file_add(za, entries[i], s, ZIP_FL_OVERWRITE) < 0)
            die(path, NULL);
    }
    if (!za || zip_close(za) != 0)
        die(path, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OMNIGLOT_PNG\n");
        return 2;
    }
    esm_blas_single_thread(); /* the trainers refuse a BLAS that threads */
    esm_dataset *ds = tiny_dataset();
    esm_err err = {0};
    if (esm_cache_write(ds, "fuzz/corpus/cache/seed-tiny", &err) != ESM_OK)
        die("cache", &err);
    static char *split_names[] = {"train"}, *split_texts[] = {"Latin/character01/rot000\n"};
    esm_dataset with_split = *ds;
    with_split.n_splits = 1;
    with_split.split_names = split_names;
    with_split.split_texts = split_texts;
    if (esm_cache_write(&with_split, "fuzz/corpus/cache/seed-split", &err) != ESM_OK)
        die("cache", &err);
    write_ckpt(ds, ESM_TRAINER_BACKPROP, "fuzz/corpus/ckpt/seed-backprop.ckpt");
    write_ckpt(ds, ESM_TRAINER_ES, "fuzz/corpus/ckpt/seed-es.ckpt");
    write_es_states();
    const char *split = "Latin/character01/rot000\nLatin/character02/rot090\nGreek/character01/rot270\n";
    put("fuzz/corpus/split/seed-three", split, strlen(split));
    const char *crlf = "Greek/character10/rot180\r\n\r\nLatin/character01/rot000";
    put("fuzz/corpus/split/seed-crlf", crlf, strlen(crlf));
    write_zip(argv[1], 0, "fuzz/corpus/zip/seed-two.zip");
    write_zip(argv[1], 100, "fuzz/corpus/zip/seed-cut-png.zip");
    return 0;
}
