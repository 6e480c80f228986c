/* A user's class-folder tree -> dataset: every folder holding images is a class. Files are
 * listed first and read by the decoding threads, so the encoded set never sits in memory. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/dataset_internal.h"
#include "data/dir_walk.h"
#include "data/image_list.h"

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot &&
           (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* Lists image files as "<class path>/<file>": every folder holding images is a class, and a
 * folder with neither images nor subfolders is an empty class. */
static esm_status visit_image(void *user, const char *rel, const char *path, int depth, int is_dir, int *take,
                              esm_err *err)
{
    esm_img_list *out = user;
    (void)path;
    if (is_dir) {
        *take = 1;
        return ESM_OK;
    }
    const char *name = strrchr(rel, '/');
    if (!is_image_name(name ? name + 1 : rel))
        return ESM_OK;
    *take = 1;
    if (depth == 1)
        return esm_fail(err, ESM_EFORMAT, "%s: image %s is not inside a class folder; put each class's images "
                        "in a folder of its own", out->root, rel);
    return esm_img_list_add(out, rel, (size_t)(name - rel), rel, err);
}

static esm_status leave_class(void *user, const char *path, int n_taken, esm_err *err)
{
    (void)user;
    if (n_taken == 0)
        return esm_fail(err, ESM_EFORMAT, "%s: empty class: the folder holds no .png, .jpg or .jpeg images", path);
    return ESM_OK;
}

esm_status esm_img_list_add(esm_img_list *l, const char *cls, size_t cls_len, const char *file, esm_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        esm_img_entry *p = realloc(l->e, cap * sizeof *p);
        if (!p)
            return esm_fail(err, ESM_ENOMEM, "%s: out of memory listing images", l->root);
        l->e = p, l->cap = cap;
    }
    esm_img_entry e = {strndup(cls, cls_len), strdup(file)};
    if (!e.cls || !e.file) {
        free(e.cls), free(e.file);
        return esm_fail(err, ESM_ENOMEM, "%s: out of memory listing images", l->root);
    }
    l->e[l->n++] = e;
    return ESM_OK;
}

void esm_img_list_free(esm_img_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].cls), free(l->e[i].file);
    free(l->e);
    l->e = NULL;
    l->n = l->cap = 0;
    for (int i = 0; i < l->n_splits; i++)
        free(l->split_name[i]), free(l->split_text[i]);
    l->n_splits = 0;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const esm_img_entry *a = pa, *b = pb;
    int c = strcmp(a->cls, b->cls);
    return c ? c : strcmp(a->file, b->file);
}

static esm_status index_classes(esm_dataset *ds, const esm_img_list *l, esm_err *err)
{
    int c = -1;
    for (size_t i = 0; i < l->n; i++) {
        if (c < 0 || strcmp(l->e[i - 1].cls, l->e[i].cls) != 0) {
            ds->names[++c] = strdup(l->e[i].cls);
            if (!ds->names[c])
                return esm_fail(err, ESM_ENOMEM, "out of memory");
            ds->background[c] = 1;
            ds->first[c] = i;
        } else if (!strcmp(l->e[i - 1].file, l->e[i].file)) {
            return esm_fail(err, ESM_EFORMAT, "%s: image %s is listed twice in class %s", l->root, l->e[i].file,
                            l->e[i].cls);
        }
        ds->n_images[c]++;
    }
    return ESM_OK;
}

esm_status esm_img_list_decode(const void *ctx, size_t i, uint8_t *out, esm_err *err)
{
    const esm_img_list_ctx *c = ctx;
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", c->list->root, c->list->e[i].file);
    return esm_image_preprocess_file(path, c->shape, out, err);
}

static esm_status check_opts(const esm_image_shape *s, esm_err *err)
{
    if (s->channels != 1 && s->channels != 3)
        return esm_fail_field(err, ESM_EINVAL, "shape.channels", "shape.channels %d: use 1 (grey) or 3 (RGB)",
                              s->channels);
    if (s->height < 1 || s->height > 4096)
        return esm_fail_field(err, ESM_EINVAL, "shape.height", "shape.height %d must be 1..4096", s->height);
    if (s->width < 1 || s->width > 4096)
        return esm_fail_field(err, ESM_EINVAL, "shape.width", "shape.width %d must be 1..4096", s->width);
    return ESM_OK;
}

static esm_status move_splits(esm_img_list *l, esm_dataset *ds, esm_err *err)
{
    esm_status st = ESM_OK;
    for (int i = 0; i < l->n_splits; i++) {
        if (st == ESM_OK)
            st = esm_dataset_add_split(ds, l->split_name[i], l->split_text[i], err); /* takes the text */
        else
            free(l->split_text[i]);
        free(l->split_name[i]);
    }
    l->n_splits = 0;
    return st;
}

esm_status esm_img_list_dataset(esm_img_list *l, const esm_images_opts *o, int with_pixels, esm_dataset **out,
                                esm_err *err)
{
    *out = NULL;
    esm_status st = check_opts(&o->shape, err);
    if (st == ESM_OK && l->n == 0)
        st = esm_fail(err, ESM_ENOTFOUND, "%s: no images listed", l->root);
    if (st != ESM_OK)
        return st;
    qsort(l->e, l->n, sizeof *l->e, cmp_entry);
    int n_classes = 0;
    for (size_t i = 0; i < l->n; i++)
        n_classes += i == 0 || strcmp(l->e[i - 1].cls, l->e[i].cls) != 0;
    esm_dataset *ds = NULL;
    st = esm_dataset_alloc(n_classes, with_pixels ? l->n : 0, o->shape.channels, o->shape.height, o->shape.width,
                           &ds, err);
    if (st != ESM_OK)
        return st;
    ds->n_total = l->n;
    ds->normalize = o->normalize != 0;
    ds->inverted = o->shape.invert != 0;
    st = index_classes(ds, l, err);
    if (st == ESM_OK)
        st = move_splits(l, ds, err);
    if (st == ESM_OK && with_pixels) {
        st = esm_dataset_decode(ds, esm_img_list_decode, &(esm_img_list_ctx){l, &o->shape}, o->threads,
                                o->progress, o->progress_user, err);
        if (st == ESM_OK)
            esm_dataset_channel_stats(ds);
    }
    if (st != ESM_OK) {
        esm_dataset_free(ds);
        return st;
    }
    *out = ds;
    return ESM_OK;
}

esm_status esm_img_list_from_dir(const char *dir, esm_img_list *l, esm_err *err)
{
    snprintf(l->root, sizeof l->root, "%s", dir);
    esm_status st = esm_dir_walk(dir, visit_image, leave_class, l, err);
    if (st == ESM_OK && l->n == 0)
        st = esm_fail(err, ESM_ENOTFOUND, "%s: no class folders with .png or .jpg images inside", dir);
    return st;
}

esm_status esm_dataset_from_images(const char *dir, const esm_images_opts *o, esm_dataset **out, esm_err *err)
{
    *out = NULL;
    esm_img_list l;
    memset(&l, 0, sizeof l);
    esm_status st = esm_img_list_from_dir(dir, &l, err);
    if (st == ESM_OK)
        st = esm_img_list_dataset(&l, o, 1, out, err);
    esm_img_list_free(&l);
    return st;
}

esm_status esm_images_prepare(const char *images_dir, const char *const *csvs, int n_csv, const esm_images_opts *o,
                              const double *ratio, uint64_t seed, const char *cache_path, esm_dataset **info,
                              esm_err *err)
{
    if (info)
        *info = NULL;
    esm_img_list l;
    memset(&l, 0, sizeof l);
    esm_dataset *ds = NULL;
    esm_status st = n_csv > 0 ? esm_img_list_from_csv(images_dir, csvs, n_csv, &l, err)
                              : esm_img_list_from_dir(images_dir, &l, err);
    if (st == ESM_OK)
        st = esm_img_list_dataset(&l, o, 0, &ds, err);
    if (st == ESM_OK && ratio)
        st = esm_dataset_split_by_ratio(ds, ratio, seed, err);
    if (st == ESM_OK)
        st = esm_cache_write_decoded(ds, esm_img_list_decode, &(esm_img_list_ctx){&l, &o->shape}, o->threads,
                                     o->batch_bytes, o->progress, o->progress_user, cache_path, err);
    esm_img_list_free(&l);
    if (st == ESM_OK && info) {
        free(ds->pixels); /* the 1-byte placeholder: reading pixels of the description faults at once */
        ds->pixels = NULL;
        *info = ds;
    } else {
        esm_dataset_free(ds);
    }
    return st;
}
