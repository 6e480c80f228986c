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

esm_status esm_afile_open(esm_afile *af, const char *path, esm_err *err);
/* Writes and folds the bytes into af->crc; errors surface at commit. */
void esm_afile_write(esm_afile *af, const void *buf, size_t len);
/* Flushes, fsyncs, renames over the target and fsyncs the folder. On any failure the
 * temporary file is removed and the target is untouched. */
esm_status esm_afile_commit(esm_afile *af, esm_err *err);
/* Abandons the write: removes the temporary file. Safe after a failed commit. */
void esm_afile_abort(esm_afile *af);

#endif
