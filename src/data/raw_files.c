/* Raw file lists: shared bookkeeping for the zip and folder readers. */
#include "data/raw_files.h"

#include <stdlib.h>
#include <string.h>

esm_status esm_raw_add(esm_raw_list *l, const char *rel, unsigned char *bytes, size_t len, esm_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        esm_raw_file *p = realloc(l->files, cap * sizeof *p);
        if (!p) {
            free(bytes);
            return esm_fail(err, ESM_ENOMEM, "%s: out of memory listing files", l->origin);
        }
        l->files = p;
        l->cap = cap;
    }
    char *r = strdup(rel);
    if (!r) {
        free(bytes);
        return esm_fail(err, ESM_ENOMEM, "%s: out of memory listing files", l->origin);
    }
    l->files[l->n++] = (esm_raw_file){.rel = r, .bytes = bytes, .len = len};
    return ESM_OK;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const esm_raw_file *)a)->rel, ((const esm_raw_file *)b)->rel);
}

void esm_raw_sort(esm_raw_list *l)
{
    if (l->n > 1)
        qsort(l->files, l->n, sizeof *l->files, cmp_rel);
}

void esm_raw_free(esm_raw_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->files[i].rel);
        free(l->files[i].bytes);
    }
    free(l->files);
    l->files = NULL;
    l->n = l->cap = 0;
}

int esm_raw_split_rel(const char *rel, size_t *char_len)
{
    const char *s1 = strchr(rel, '/');
    if (!s1 || s1 == rel)
        return 0;
    const char *s2 = strchr(s1 + 1, '/');
    if (!s2 || s2 == s1 + 1 || strchr(s2 + 1, '/') || !s2[1])
        return 0;
    *char_len = (size_t)(s2 - rel);
    return 1;
}
