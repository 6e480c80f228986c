/* Reads golden files: magic "ESMGOLD1", uint32 version, uint32 count, then named float32 arrays. */
#include "golden_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_u32(FILE *f, uint32_t *v)
{
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4)
        return -1;
    *v = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static int read_entries(FILE *f, esm_golden *g)
{
    for (int i = 0; i < g->count; i++) {
        uint32_t nlen, n;
        if (read_u32(f, &nlen) || nlen > 256)
            return -1;
        g->names[i] = calloc(nlen + 1, 1);
        if (!g->names[i] || fread(g->names[i], 1, nlen, f) != nlen || read_u32(f, &n) || n > (1u << 26))
            return -1;
        g->len[i] = n;
        g->data[i] = malloc((n ? n : 1) * sizeof(float));
        /* The files are little-endian float32, as is every machine esmeta builds on. */
        if (!g->data[i] || fread(g->data[i], sizeof(float), n, f) != n)
            return -1;
    }
    return 0;
}

int esm_golden_load(const char *name, esm_golden *g)
{
    memset(g, 0, sizeof *g);
    const char *dir = getenv("ESM_TEST_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s%stests/golden/%s", dir ? dir : "", dir ? "/" : "", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "    cannot open %s (run the tests from the repository root or set ESM_TEST_SRCDIR)\n", path);
        return -1;
    }
    char magic[8];
    uint32_t version, count;
    int ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, "ESMGOLD1", 8) == 0 && !read_u32(f, &version) &&
             version == 1 && !read_u32(f, &count) && count < 1000;
    if (ok) {
        g->count = (int)count;
        g->names = calloc(count, sizeof *g->names);
        g->data = calloc(count, sizeof *g->data);
        g->len = calloc(count, sizeof *g->len);
        ok = g->names && g->data && g->len && read_entries(f, g) == 0;
    }
    fclose(f);
    if (!ok) {
        fprintf(stderr, "    %s is not a version-1 golden file or is truncated\n", path);
        esm_golden_free(g);
        return -1;
    }
    return 0;
}

void esm_golden_free(esm_golden *g)
{
    for (int i = 0; i < g->count; i++) {
        if (g->names)
            free(g->names[i]);
        if (g->data)
            free(g->data[i]);
    }
    free(g->names);
    free(g->data);
    free(g->len);
    memset(g, 0, sizeof *g);
}

const float *esm_golden_get(const esm_golden *g, const char *name, size_t *len)
{
    for (int i = 0; i < g->count; i++)
        if (strcmp(g->names[i], name) == 0) {
            if (len)
                *len = g->len[i];
            return g->data[i];
        }
    fprintf(stderr, "    golden file has no array '%s'\n", name);
    return NULL;
}
