/* Atomic file replacement (see atomic_file.h). */
#define _GNU_SOURCE
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The errno the test seam injects before op on the file being written, or 0. */
static int injected(const char *op, const char *path)
{
    return esm_afile_fault ? esm_afile_fault(op, path) : 0;
}

esm_status esm_afile_open(esm_afile *af, const char *path, esm_err *err)
{
    memset(af, 0, sizeof *af);
    if (strlen(path) + 16 > sizeof af->tmp_path)
        return esm_fail(err, ESM_EINVAL, "%s: path too long", path);
    snprintf(af->final_path, sizeof af->final_path, "%s", path);
    /* A fixed name, so a temporary left by a process killed mid-write is reused and replaced by
     * the next save instead of piling up. One writer per target is assumed. */
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp", path);
    int fault = injected("open", path);
    int fd = fault ? (errno = fault, -1) : open(af->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return esm_fail(err, ESM_EIO, "%s: cannot create a file there (%s); check the folder exists and is writable",
                        path, strerror(errno));
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        unlink(af->tmp_path);
        return esm_fail(err, ESM_EIO, "%s: %s", path, strerror(errno));
    }
    return ESM_OK;
}

void esm_afile_write(esm_afile *af, const void *buf, size_t len)
{
    if (af->failed || len == 0)
        return;
    int fault = injected("write", af->final_path);
    if (fault)
        af->failed = fault;
    else if (fwrite(buf, 1, len, af->f) != len)
        af->failed = errno ? errno : EIO;
    af->crc = esm_crc32(af->crc, buf, len);
}

void esm_afile_rewrite(esm_afile *af, uint64_t offset, const void *buf, size_t len)
{
    if (af->failed || len == 0)
        return;
    int fault = injected("write", af->final_path);
    if (fault)
        af->failed = fault;
    else if (fflush(af->f) != 0 || pwrite(fileno(af->f), buf, len, (off_t)offset) != (ssize_t)len)
        af->failed = errno ? errno : EIO;
}

static void fsync_parent(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some file systems refuse fsync on folders */
        close(dfd);
    }
}

esm_status esm_afile_commit(esm_afile *af, esm_err *err)
{
    int e = af->failed;
    if (!e && ((e = injected("flush", af->final_path)) || fflush(af->f) != 0))
        e = e ? e : errno;
    if (!e && ((e = injected("fsync", af->final_path)) || fsync(fileno(af->f)) != 0))
        e = e ? e : errno;
    int close_fault = e ? 0 : injected("close", af->final_path);
    if (fclose(af->f) != 0 && !e)
        e = errno;
    e = e ? e : close_fault;
    af->f = NULL;
    if (!e && ((e = injected("rename", af->final_path)) || rename(af->tmp_path, af->final_path) != 0))
        e = e ? e : errno;
    if (e) {
        unlink(af->tmp_path);
        return esm_fail(err, ESM_EIO, "%s: write failed (%s); the previous file, if any, is unchanged",
                        af->final_path, strerror(e));
    }
    fsync_parent(af->final_path);
    return ESM_OK;
}

void esm_afile_abort(esm_afile *af)
{
    if (af->f) {
        fclose(af->f);
        af->f = NULL;
    }
    unlink(af->tmp_path);
}
