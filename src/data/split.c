/* Splits: which classes (character x rotation) a run may draw from. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read_file.h"
#include "esmeta/data.h"

typedef struct {
    const char *name;
    int idx;
} name_idx;

static int cmp_name_idx(const void *a, const void *b)
{
    return strcmp(((const name_idx *)a)->name, ((const name_idx *)b)->name);
}

static esm_status add_class(const esm_dataset *ds, esm_split *sp, int *cap, int chr, int rot, esm_err *err)
{
    if (rot % 2 && ds->height != ds->width)
        return esm_fail(err, ESM_EINVAL, "class %s at %d degrees: rotations need square images and these are "
                        "%dx%d; use rotation 0 only, or prepare the images at a square size", ds->names[chr], rot * 90,
                        ds->height, ds->width);
    if (sp->n_classes == *cap) {
        int ncap = *cap ? 2 * *cap : 256;
        esm_class *p = realloc(sp->classes, (size_t)ncap * sizeof *p);
        if (!p)
            return esm_fail(err, ESM_ENOMEM, "out of memory building a split");
        sp->classes = p;
        *cap = ncap;
    }
    sp->classes[sp->n_classes++] = (esm_class){chr, rot, ds->n_images[chr]};
    return ESM_OK;
}

static void finish(esm_split *sp)
{
    sp->min_images = 0;
    for (int i = 0; i < sp->n_classes; i++) {
        int n = sp->classes[i].n_images;
        if (i == 0 || n < sp->min_images)
            sp->min_images = n;
    }
}

/* "CLASS/rotDDD" -> class name length and quarter turns; a line without a rotation suffix is
 * the whole class at rotation 0. Returns 0 for a malformed rotation. */
static int parse_line(const char *line, size_t len, size_t *name_len, int *rot)
{
    *name_len = len, *rot = 0;
    if (len < 8 || memcmp(line + len - 7, "/rot", 4) != 0)
        return 1;
    const char *d = line + len - 3;
    if (!isdigit((unsigned char)d[0]) || !isdigit((unsigned char)d[1]) || !isdigit((unsigned char)d[2]))
        return 0;
    int deg = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
    if (deg % 90 != 0 || deg >= 360)
        return 0;
    *rot = deg / 90;
    *name_len = len - 7;
    return 1;
}

static esm_status parse_lines(const esm_dataset *ds, const char *text, const char *origin, const name_idx *index,
                              esm_split *sp, esm_err *err)
{
    int cap = 0, lineno = 0;
    unsigned char *seen = calloc((size_t)ds->n_chars * 4 + 1, 1);
    if (!seen)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    esm_status st = ESM_OK;
    for (const char *p = text; *p && st == ESM_OK;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        lineno++;
        const char *line = p;
        p += len + (eol ? 1 : 0);
        while (len > 0 && isspace((unsigned char)line[len - 1]))
            len--;
        if (len == 0)
            continue;
        size_t name_len;
        int rot;
        if (!parse_line(line, len, &name_len, &rot)) {
            st = esm_fail(err, ESM_EFORMAT, "%s line %d: malformed '%.*s'; expected CLASS/rotDDD with DDD one "
                          "of 000, 090, 180, 270, or CLASS", origin, lineno, (int)(len > 200 ? 200 : len), line);
            break;
        }
        char name[512];
        snprintf(name, sizeof name, "%.*s", (int)(name_len < 511 ? name_len : 511), line);
        name_idx key = {name, 0};
        const name_idx *hit = bsearch(&key, index, (size_t)ds->n_chars, sizeof *index, cmp_name_idx);
        if (!hit) {
            st = esm_fail(err, ESM_ENOTFOUND, "%s line %d: no class '%s' in the data (lines are CLASS or "
                          "CLASS/rotDDD; malformed, or a split file of another data set)", origin, lineno, name);
        } else if (seen[hit->idx * 4 + rot]++) {
            st = esm_fail(err, ESM_EFORMAT, "%s line %d: class '%.*s' is listed twice", origin, lineno, (int)len, line);
        } else {
            st = add_class(ds, sp, &cap, hit->idx, rot, err);
        }
    }
    free(seen);
    if (st == ESM_OK && sp->n_classes == 0)
        st = esm_fail(err, ESM_EFORMAT, "%s: the split lists no classes", origin);
    return st;
}

esm_status esm_split_parse(const esm_dataset *ds, const char *text, const char *origin, esm_split *out, esm_err *err)
{
    memset(out, 0, sizeof *out);
    name_idx *index = malloc(sizeof *index * (size_t)(ds->n_chars + 1));
    if (!index)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    for (int i = 0; i < ds->n_chars; i++)
        index[i] = (name_idx){ds->names[i], i};
    qsort(index, (size_t)ds->n_chars, sizeof *index, cmp_name_idx);
    esm_status st = parse_lines(ds, text, origin, index, out, err);
    free(index);
    if (st != ESM_OK) {
        esm_split_free(out);
        return st;
    }
    finish(out);
    return ESM_OK;
}

/* Lake's split: every character of one half, at all four rotations. */
static esm_status lake_split(const esm_dataset *ds, int background, esm_split *out, esm_err *err)
{
    memset(out, 0, sizeof *out);
    int cap = 0;
    for (int c = 0; c < ds->n_chars; c++)
        for (int r = 0; r < 4 && ds->background[c] == background; r++) {
            esm_status st = add_class(ds, out, &cap, c, r, err);
            if (st != ESM_OK) {
                esm_split_free(out);
                return st;
            }
        }
    if (out->n_classes == 0)
        return esm_fail(err, ESM_ENOTFOUND, "split %s: the data has no %s characters",
                        background ? "background" : "evaluation", background ? "images_background" : "images_evaluation");
    finish(out);
    return ESM_OK;
}

esm_status esm_split_get(const esm_dataset *ds, const char *name, esm_split *out, esm_err *err)
{
    static const char *const vinyals[] = {"train", "val", "trainval", "test"};
    memset(out, 0, sizeof *out);
    if (!strcmp(name, "background") || !strcmp(name, "evaluation"))
        return lake_split(ds, !strcmp(name, "background"), out, err);
    for (int i = 0; i < ds->n_splits; i++)
        if (!strcmp(ds->split_names[i], name)) {
            char origin[300];
            snprintf(origin, sizeof origin, "split file %.200s.txt", name);
            return esm_split_parse(ds, ds->split_texts[i], origin, out, err);
        }
    for (int v = 0; v < 4; v++) {
        if (strcmp(name, vinyals[v]) != 0)
            continue;
        return esm_fail(err, ESM_ENOTFOUND, "split '%s' needs splits/vinyals/%s.txt in the data folder; run "
                        "scripts/fetch-omniglot (and 'esmeta prepare' again if you use a cache)", name, name);
    }
    unsigned char *text;
    size_t len;
    esm_err ferr;
    if (esm_read_file(name, "split file", &text, &len, &ferr) != ESM_OK)
        return esm_fail(err, ESM_ENOTFOUND, "unknown split '%s': use train, val, trainval, test, background, "
                        "evaluation, or the path of a split file (%s)", name, ferr.msg);
    esm_status st = esm_split_parse(ds, (const char *)text, name, out, err);
    free(text);
    return st;
}

void esm_split_free(esm_split *sp)
{
    free(sp->classes);
    sp->classes = NULL;
    sp->n_classes = 0;
}

int esm_split_shared(const esm_dataset *ds, const esm_split *a, const esm_split *b)
{
    unsigned char *in_a = calloc((size_t)ds->n_chars * 4, 1);
    if (!in_a)
        return -1;
    for (int i = 0; i < a->n_classes; i++)
        in_a[(size_t)a->classes[i].chr * 4 + (size_t)a->classes[i].rot] = 1;
    int n = 0;
    for (int i = 0; i < b->n_classes; i++)
        n += in_a[(size_t)b->classes[i].chr * 4 + (size_t)b->classes[i].rot];
    free(in_a);
    return n;
}
