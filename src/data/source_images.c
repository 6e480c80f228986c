/* A user's class-folder tree -> dataset: every folder holding images is a class. Files are
 * listed first and read by the decoding threads, so the encoded set never sits in memory. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/read_file.h"
#include "data/dataset_internal.h"

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot &&
           (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* Lists image files as "<class path>/<file>" (bytes left NULL); a folder with neither images
 * nor subfolders is an empty class. */
static esm_status walk(const char *root, const char *rel, esm_raw_list *out, esm_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return esm_fail(err, ESM_EIO, "%s: cannot open folder (%s)", path, strerror(errno));
    esm_status st = ESM_OK;
    int entries = 0;
    struct dirent *e;
    while (st == ESM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char child_rel[4096], child[8192];
        snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(child, sizeof child, "%s/%s", root, child_rel);
        struct stat sb;
        if (stat(child, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            entries++;
            st = walk(root, child_rel, out, err);
        } else if (S_ISREG(sb.st_mode) && is_image_name(e->d_name)) {
            entries++;
            if (!*rel)
                st = esm_fail(err, ESM_EFORMAT, "%s: image %s is not inside a class folder; put each class's images "
                              "in a folder of its own", root, e->d_name);
            else
                st = esm_raw_add(out, child_rel, NULL, 0, err);
        }
    }
    closedir(d);
    if (st == ESM_OK && entries == 0 && *rel)
        st = esm_fail(err, ESM_EFORMAT, "%s: empty class: the folder holds no .png, .jpg or .jpeg images", path);
    return st;
}

static size_t dir_len(const char *rel) { return (size_t)(strrchr(rel, '/') - rel); }

/* By class folder, then file: plain string order would interleave "a/b/x.png" and "a/b/c/y.png". */
static int cmp_class_then_file(const void *pa, const void *pb)
{
    const char *a = ((const esm_raw_file *)pa)->rel, *b = ((const esm_raw_file *)pb)->rel;
    size_t la = dir_len(a), lb = dir_len(b), l = la < lb ? la : lb;
    int c = strncmp(a, b, l);
    if (c || la == lb)
        return c ? c : strcmp(a + la, b + lb);
    return la < lb ? -1 : 1;
}

static int same_class(const char *a, const char *b)
{
    return dir_len(a) == dir_len(b) && strncmp(a, b, dir_len(a)) == 0;
}

static esm_status index_classes(esm_dataset *ds, const esm_raw_list *l, esm_err *err)
{
    int c = -1;
    for (size_t i = 0; i < l->n; i++) {
        const char *rel = l->files[i].rel;
        if (c < 0 || !same_class(l->files[i - 1].rel, rel)) {
            ds->names[++c] = strndup(rel, dir_len(rel));
            if (!ds->names[c])
                return esm_fail(err, ESM_ENOMEM, "out of memory");
            ds->background[c] = 1;
            ds->first[c] = i;
        }
        ds->n_images[c]++;
    }
    return ESM_OK;
}

typedef struct {
    const esm_raw_list *files;
    const esm_image_shape *shape;
} images_ctx;

static esm_status decode_file(const void *ctx, size_t i, uint8_t *out, esm_err *err)
{
    const images_ctx *c = ctx;
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", c->files->origin, c->files->files[i].rel);
    unsigned char *bytes;
    size_t len;
    esm_status st = esm_read_file(path, "image", &bytes, &len, err);
    if (st != ESM_OK)
        return st;
    st = esm_image_preprocess(bytes, len, c->shape, out, path, err);
    free(bytes);
    return st;
}

static esm_status check_opts(const esm_image_shape *s, esm_err *err)
{
    if (s->channels != 1 && s->channels != 3)
        return esm_fail(err, ESM_EINVAL, "--channels %d: use 1 (grey) or 3 (RGB)", s->channels);
    if (s->height < 1 || s->width < 1 || s->height > 4096 || s->width > 4096)
        return esm_fail(err, ESM_EINVAL, "--size %dx%d: height and width must be 1..4096", s->height, s->width);
    return ESM_OK;
}

esm_status esm_dataset_from_images(const char *dir, const esm_images_opts *o, esm_dataset **out, esm_err *err)
{
    *out = NULL;
    esm_status st = check_opts(&o->shape, err);
    if (st != ESM_OK)
        return st;
    esm_raw_list files;
    memset(&files, 0, sizeof files);
    snprintf(files.origin, sizeof files.origin, "%s", dir);
    st = walk(dir, "", &files, err);
    if (st == ESM_OK && files.n == 0)
        st = esm_fail(err, ESM_ENOTFOUND, "%s: no class folders with .png or .jpg images inside", dir);
    esm_dataset *ds = NULL;
    if (st == ESM_OK) {
        qsort(files.files, files.n, sizeof *files.files, cmp_class_then_file);
        int n_classes = 0;
        for (size_t i = 0; i < files.n; i++)
            n_classes += i == 0 || !same_class(files.files[i - 1].rel, files.files[i].rel);
        st = esm_dataset_alloc(n_classes, files.n, o->shape.channels, o->shape.height, o->shape.width, &ds, err);
    }
    if (st == ESM_OK)
        st = index_classes(ds, &files, err);
    if (st == ESM_OK)
        st = esm_dataset_decode(ds, decode_file, &(images_ctx){&files, &o->shape}, o->threads, o->progress,
                                o->progress_user, err);
    esm_raw_free(&files);
    if (st == ESM_OK) {
        esm_dataset_channel_stats(ds);
        ds->normalize = o->normalize != 0;
    }
    if (st != ESM_OK) {
        esm_dataset_free(ds);
        return st;
    }
    *out = ds;
    return ESM_OK;
}
