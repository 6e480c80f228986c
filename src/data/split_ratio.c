/* A seeded random split of the classes by ratio, for sets that come without one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"

static const char *const NAMES[3] = {"train", "val", "test"};

/* The class names of order[0..n) as split text, one per line, in class order. */
static char *split_text(const esm_dataset *ds, const int *order, int n, unsigned char *mark)
{
    memset(mark, 0, (size_t)ds->n_chars);
    size_t len = 1;
    for (int i = 0; i < n; i++) {
        mark[order[i]] = 1;
        len += strlen(ds->names[order[i]]) + 1;
    }
    char *text = malloc(len), *p = text;
    if (!text)
        return NULL;
    for (int c = 0; c < ds->n_chars; c++)
        if (mark[c]) {
            size_t l = strlen(ds->names[c]);
            memcpy(p, ds->names[c], l);
            p[l] = '\n';
            p += l + 1;
        }
    *p = 0;
    return text;
}

static esm_status check_ratio(const double r[3], int n_chars, int counts[3], esm_err *err)
{
    double sum = r[0] + r[1] + r[2];
    if (!(r[0] >= 0 && r[1] >= 0 && r[2] >= 0) || fabs(sum - 1.0) > 1e-6)
        return esm_fail(err, ESM_EINVAL, "split ratio %g,%g,%g: need three non-negative fractions that add up to 1",
                        r[0], r[1], r[2]);
    counts[0] = (int)floor(r[0] * n_chars + 0.5);
    counts[1] = (int)floor(r[1] * n_chars + 0.5);
    counts[2] = n_chars - counts[0] - counts[1];
    for (int s = 0; s < 3; s++)
        if (counts[s] < 1)
            return esm_fail(err, ESM_EINVAL, "split ratio %g,%g,%g of %d classes leaves split %s with no class; use "
                            "other fractions or more classes", r[0], r[1], r[2], n_chars, NAMES[s]);
    return ESM_OK;
}

esm_status esm_dataset_split_by_ratio(esm_dataset *ds, const double ratio[3], uint64_t seed, esm_err *err)
{
    int counts[3];
    esm_status st = check_ratio(ratio, ds->n_chars, counts, err);
    if (st != ESM_OK)
        return st;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < ds->n_splits; i++)
            if (!strcmp(ds->split_names[i], NAMES[s]))
                return esm_fail(err, ESM_EINVAL, "the data already has a split named %s", NAMES[s]);
    int *order = malloc(sizeof *order * (size_t)ds->n_chars);
    unsigned char *mark = malloc((size_t)ds->n_chars);
    if (!order || !mark) {
        free(order), free(mark);
        return esm_fail(err, ESM_ENOMEM, "out of memory splitting");
    }
    /* Fisher-Yates from a Philox stream of its own: the split is a pure function of (seed, names). */
    esm_stream rng = esm_stream_make(seed, 0x5e117u, 0, 0);
    for (int i = 0; i < ds->n_chars; i++)
        order[i] = i;
    for (int i = ds->n_chars - 1; i > 0; i--) {
        int j = (int)esm_stream_below(&rng, (uint32_t)i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    for (int s = 0, at = 0; s < 3 && st == ESM_OK; at += counts[s], s++) {
        char *text = split_text(ds, order + at, counts[s], mark);
        st = text ? esm_dataset_add_split(ds, NAMES[s], text, err) : esm_fail(err, ESM_ENOMEM, "out of memory");
    }
    free(order);
    free(mark);
    return st;
}
