/* The scratch file of a harness: one per process under $TMPDIR, rewritten for each input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bytes.h"
#include "esmeta/core.h"
#include "fuzz_target.h"

const char *esm_fuzz_file(const char *suffix, const uint8_t *data, size_t size)
{
    static char path[512]; /* harness-only: one input at a time per process */
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/esm-fuzz-%ld%s", dir && *dir ? dir : "/tmp", (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || w != size)
        return NULL;
    return path;
}

const char *esm_fuzz_file_crc(const char *suffix, const uint8_t *data, size_t size)
{
    if (size < 4)
        return NULL;
    uint8_t *fixed = malloc(size);
    if (!fixed)
        return NULL;
    memcpy(fixed, data, size);
    esm_put_u32(fixed + size - 4, esm_crc32(0, fixed, size - 4));
    const char *path = memcmp(fixed, data, size) ? esm_fuzz_file(suffix, fixed, size) : NULL;
    free(fixed);
    return path;
}
