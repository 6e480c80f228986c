/* mini-ImageNet's convention (Ravi & Larochelle): one CSV per split, rows "filename,label",
 * the images in one folder. Each label is a class; each file becomes a split of its classes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/read_file.h"
#include "data/dataset_internal.h"
#include "data/image_list.h"

typedef struct {
    const char *label;
    int csv;
} label_src;

static int cmp_label_src(const void *pa, const void *pb)
{
    const label_src *a = pa, *b = pb;
    int c = strcmp(a->label, b->label);
    return c ? c : a->csv - b->csv;
}

static esm_status parse_csv(const char *csv, char *text, esm_img_list *l, esm_err *err)
{
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = 0;
        if (!len || (lineno == 1 && !strcmp(line, "filename,label")))
            continue;
        char *comma = strchr(line, ',');
        if (!comma || comma == line || !comma[1] || strchr(comma + 1, ','))
            return esm_fail(err, ESM_EFORMAT, "%s line %d: expected 'filename,label', got '%.200s'", csv, lineno, line);
        *comma = 0;
        char path[8400];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", l->root, line);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            return esm_fail(err, ESM_ENOTFOUND, "%s line %d: image %s is not in %s", csv, lineno, line, l->root);
        esm_status st = esm_img_list_add(l, comma + 1, strlen(comma + 1), line, err);
        if (st != ESM_OK)
            return st;
    }
    return ESM_OK;
}

/* Splits must not share classes: a label in two files is refused, naming both. */
static esm_status check_disjoint(const esm_img_list *l, const size_t *csv_end, const char *const *csvs, esm_err *err)
{
    label_src *ls = malloc(sizeof *ls * (l->n + 1));
    if (!ls)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    for (size_t i = 0, f = 0; i < l->n; i++) {
        while (i >= csv_end[f])
            f++;
        ls[i] = (label_src){l->e[i].cls, (int)f};
    }
    qsort(ls, l->n, sizeof *ls, cmp_label_src);
    esm_status st = ESM_OK;
    for (size_t i = 1; i < l->n && st == ESM_OK; i++)
        if (!strcmp(ls[i].label, ls[i - 1].label) && ls[i].csv != ls[i - 1].csv)
            st = esm_fail(err, ESM_EFORMAT, "duplicate class %s: it is in both %s and %s, and splits must not share "
                          "classes", ls[i].label, csvs[ls[i - 1].csv], csvs[ls[i].csv]);
    free(ls);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The split of entries [begin, end): their distinct labels, one per line, in name order. */
static char *labels_text(const esm_img_list *l, size_t begin, size_t end)
{
    const char **labels = malloc(sizeof *labels * (end - begin + 1));
    if (!labels)
        return NULL;
    size_t len = 1;
    for (size_t i = begin; i < end; i++)
        labels[i - begin] = l->e[i].cls, len += strlen(l->e[i].cls) + 1;
    qsort(labels, end - begin, sizeof *labels, cmp_str);
    char *text = malloc(len), *p = text;
    for (size_t i = 0; text && i < end - begin; i++)
        if (i == 0 || strcmp(labels[i], labels[i - 1]) != 0)
            p += sprintf(p, "%s\n", labels[i]);
    if (text)
        *p = 0;
    free(labels);
    return text;
}

static void split_name(const char *csv, char *name, size_t cap)
{
    const char *base = strrchr(csv, '/') ? strrchr(csv, '/') + 1 : csv;
    size_t n = strlen(base);
    if (n > 4 && !strcmp(base + n - 4, ".csv"))
        n -= 4;
    snprintf(name, cap, "%.*s", (int)n, base);
}

esm_status esm_img_list_from_csv(const char *images_dir, const char *const *csvs, int n_csv, esm_img_list *l,
                                 esm_err *err)
{
    if (n_csv < 1 || n_csv > 64)
        return esm_fail(err, ESM_EINVAL, "%d CSV split files: give 1 to 64", n_csv);
    snprintf(l->root, sizeof l->root, "%s", images_dir);
    size_t ends[64];
    esm_status st = ESM_OK;
    for (int f = 0; f < n_csv && st == ESM_OK; f++) {
        size_t begin = l->n, len;
        unsigned char *text;
        st = esm_read_file(csvs[f], "CSV split file", &text, &len, err);
        if (st != ESM_OK)
            break;
        st = parse_csv(csvs[f], (char *)text, l, err);
        free(text);
        if (st == ESM_OK && l->n == begin)
            st = esm_fail(err, ESM_EFORMAT, "%s: no 'filename,label' rows", csvs[f]);
        if (st == ESM_OK) {
            char name[256];
            split_name(csvs[f], name, sizeof name);
            l->split_text[f] = labels_text(l, begin, l->n);
            l->split_name[f] = strdup(name);
            l->n_splits = f + 1;
            if (!l->split_text[f] || !l->split_name[f])
                st = esm_fail(err, ESM_ENOMEM, "out of memory");
        }
        ends[f] = l->n;
    }
    return st == ESM_OK ? check_disjoint(l, ends, csvs, err) : st;
}

esm_status esm_dataset_from_csv(const char *images_dir, const char *const *csvs, int n_csv, const esm_images_opts *o,
                                esm_dataset **out, esm_err *err)
{
    *out = NULL;
    esm_img_list l;
    memset(&l, 0, sizeof l);
    esm_status st = esm_img_list_from_csv(images_dir, csvs, n_csv, &l, err);
    if (st == ESM_OK)
        st = esm_img_list_dataset(&l, o, 1, out, err);
    esm_img_list_free(&l);
    return st;
}
