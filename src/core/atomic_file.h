/* Atomic file replacement: write to a temporary file beside the target, fsync, rename.
 * A crash at any point leaves either the old file or the new one, never a mix. */
#ifndef ESM_CORE_ATOMIC_FILE_H
#define ESM_CORE_ATOMIC_FILE_H

#include <stdio.h>

#include "esmeta/core.h"

typedef struct {
    FILE *f;
    char tmp_path[4096];
    char final_path[4096];
    uint32_t crc;    /* running CRC-32 of everything written through esm_afile_write */
    int failed;      /* a write failed; commit will refuse */
} esm_afile;

/* Test seam: a program that defines esm_afile_fault (the test suite does) is asked before each
 * operation of every atomic write ("open", "write", "flush", "fsync", "close", "rename") and
 * may return an errno to make that operation fail as the system would (or stop the process
 * there). It is a weak symbol, not a settable pointer, so that the library keeps no mutable
 * state and programs that do not define it (the CLI) get no fault path at all: the seam
 * resolves to NULL at link time. */
int esm_afile_fault(const char *op, const char *path) __attribute__((weak));

esm_status esm_afile_open(esm_afile *af, const char *path, esm_err *err);
/* Writes and folds the bytes into af->crc; errors surface at commit. */
void esm_afile_write(esm_afile *af, const void *buf, size_t len);
/* Overwrites len bytes at offset, inside what was written already (a header whose contents are
 * known only at the end). Not folded into af->crc; errors surface at commit. */
void esm_afile_rewrite(esm_afile *af, uint64_t offset, const void *buf, size_t len);
/* Flushes, fsyncs, renames over the target and fsyncs the folder. On any failure the
 * temporary file is removed and the target is untouched. */
esm_status esm_afile_commit(esm_afile *af, esm_err *err);
/* Abandons the write: removes the temporary file. Safe after a failed commit. */
void esm_afile_abort(esm_afile *af);

#endif
