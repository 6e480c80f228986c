/* Assembles an esm_dataset from the two Omniglot halves (zips or folders) and the split files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/read_file.h"
#include "data/dataset_internal.h"
#include "data/raw_files.h"

static const char *const HALVES[2] = {"images_background", "images_evaluation"};
static const char *const VINYALS[4] = {"train", "val", "trainval", "test"};

esm_load_opts esm_load_opts_default(void)
{
    esm_load_opts o = {.src_size = 105, .out_size = 28};
    return o;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static esm_status read_half(const char *root, const char *half, esm_raw_list *out, esm_err *err)
{
    char dir[4096], zip[4200];
    snprintf(dir, sizeof dir, "%s/%s", root, half);
    snprintf(zip, sizeof zip, "%s.zip", dir);
    if (is_dir(dir))
        return esm_raw_from_dir(dir, out, err);
    if (is_file(zip))
        return esm_raw_from_zip(zip, half, out, err);
    return esm_fail(err, ESM_ENOTFOUND, "%s: neither %s.zip nor an extracted %s folder is there; run scripts/fetch-omniglot "
                    "or load the Omniglot folder itself", root, half, half);
}

/* Split files are optional at load time; a missing one is reported when that split is asked for. */
static esm_status read_splits(const char *root, esm_dataset *ds, esm_err *err)
{
    for (int i = 0; i < 4; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/splits/vinyals/%s.txt", root, VINYALS[i]);
        if (!is_file(path))
            continue;
        unsigned char *text;
        size_t len;
        esm_status st = esm_read_file(path, "split file", &text, &len, err);
        if (st != ESM_OK)
            return st;
        st = esm_dataset_add_split(ds, VINYALS[i], (char *)text, err);
        if (st != ESM_OK)
            return st;
    }
    return ESM_OK;
}

static esm_status load_folder(const char *root, const esm_load_opts *o, esm_dataset **out, esm_err *err)
{
    esm_raw_list halves[2];
    memset(halves, 0, sizeof halves);
    esm_status st = ESM_OK;
    for (int h = 0; h < 2 && st == ESM_OK; h++) {
        st = read_half(root, HALVES[h], &halves[h], err);
        esm_raw_sort(&halves[h]);
    }
    esm_dataset *ds = NULL;
    if (st == ESM_OK)
        st = esm_dataset_from_raw(halves, o, &ds, err);
    for (int h = 0; h < 2; h++)
        esm_raw_free(&halves[h]);
    if (st == ESM_OK)
        st = read_splits(root, ds, err);
    if (st != ESM_OK) {
        esm_dataset_free(ds);
        return st;
    }
    *out = ds;
    return ESM_OK;
}

esm_status esm_dataset_load(const char *path, const esm_load_opts *opts, esm_dataset **out, esm_err *err)
{
    esm_load_opts o = opts ? *opts : esm_load_opts_default();
    *out = NULL;
    if (o.src_size <= 0 || o.out_size <= 0 || o.out_size > o.src_size)
        return esm_fail(err, ESM_EINVAL, "image sizes %d -> %d: need 0 < output size <= source size", o.src_size,
                        o.out_size);
    if (is_dir(path))
        return load_folder(path, &o, out, err);
    if (is_file(path)) {
        if (!esm_cache_is_cache(path))
            return esm_fail(err, ESM_EFORMAT, "%s: not an esmeta cache file; pass the Omniglot folder or a file "
                            "made by 'esmeta prepare'", path);
        return esm_cache_read(path, out, err);
    }
    return esm_fail(err, ESM_ENOTFOUND, "%s: no such file or folder; load the Omniglot folder or a "
                    "cache file, or run scripts/fetch-omniglot", path);
}
