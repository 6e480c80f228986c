#include "core/read_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

esm_status esm_read_file(const char *path, const char *what, unsigned char **buf, size_t *len, esm_err *err)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return esm_fail(err, errno == ENOENT ? ESM_ENOTFOUND : ESM_EIO, "%s %s: %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return esm_fail(err, ESM_EIO, "%s %s: not a regular file", what, path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *p = malloc(n + 1);
    if (!p) {
        fclose(f);
        return esm_fail(err, ESM_ENOMEM, "%s %s: cannot allocate %zu bytes", what, path, n);
    }
    size_t got = fread(p, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != n || rerr) {
        free(p);
        return esm_fail(err, ESM_EIO, "%s %s: read failed", what, path);
    }
    p[n] = 0;
    *buf = p;
    *len = n;
    return ESM_OK;
}
