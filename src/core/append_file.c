/* Append-only files (see append_file.h). */
#include "core/append_file.h"

#include <errno.h>
#include <string.h>

static int injected(const char *op, const char *path)
{
    return esm_afile_fault ? esm_afile_fault(op, path) : 0;
}

esm_status esm_appendf_open(esm_appendf *a, const char *path, int truncate, esm_err *err)
{
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->path)
        return esm_fail(err, ESM_EINVAL, "%s: path too long", path);
    snprintf(a->path, sizeof a->path, "%s", path);
    int fault = injected("open", path);
    a->f = fault ? (errno = fault, NULL) : fopen(path, truncate ? "w" : "a");
    if (!a->f)
        return esm_fail(err, ESM_EIO, "%s: cannot open for writing (%s)", path, strerror(errno));
    return ESM_OK;
}

void esm_appendf_write(esm_appendf *a, const void *buf, size_t len)
{
    if (a->failed || len == 0)
        return;
    int fault = injected("write", a->path);
    errno = 0;
    if (fault)
        a->failed = fault;
    else if (fwrite(buf, 1, len, a->f) != len)
        a->failed = errno ? errno : EIO;
}

static esm_status report(esm_appendf *a, esm_err *err)
{
    return esm_fail(err, ESM_EIO, "%s: write failed (%s)", a->path, strerror(a->failed));
}

esm_status esm_appendf_flush(esm_appendf *a, esm_err *err)
{
    if (!a->failed) {
        int fault = injected("flush", a->path);
        errno = 0;
        if (fault || fflush(a->f) != 0 || ferror(a->f))
            a->failed = fault ? fault : errno ? errno : EIO;
    }
    return a->failed ? report(a, err) : ESM_OK;
}

esm_status esm_appendf_close(esm_appendf *a, esm_err *err)
{
    if (!a->f)
        return ESM_OK;
    esm_appendf_flush(a, NULL);
    int fault = a->failed ? 0 : injected("close", a->path);
    errno = 0;
    if (fclose(a->f) != 0 && !a->failed)
        a->failed = errno ? errno : EIO;
    a->f = NULL;
    if (fault && !a->failed)
        a->failed = fault;
    return a->failed ? report(a, err) : ESM_OK;
}
