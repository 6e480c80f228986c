/* Append-only files (a run's metrics log): lines are added and flushed, never rewritten in
 * place. Writes go through the test seam of atomic_file.h (esm_afile_fault, asked before each
 * "open", "write", "flush" and "close"), so tests can fail each of them as a full disk would. */
#ifndef ESM_CORE_APPEND_FILE_H
#define ESM_CORE_APPEND_FILE_H

#include <stdio.h>

#include "core/atomic_file.h"

typedef struct {
    FILE *f;
    char path[4096];
    int failed; /* errno of the first failed write or flush; every later flush reports it */
} esm_appendf;

/* Opens path for appending, or emptied first when truncate is set. */
esm_status esm_appendf_open(esm_appendf *a, const char *path, int truncate, esm_err *err);
/* Adds the bytes; a failure is kept and reported by the next flush or close. */
void esm_appendf_write(esm_appendf *a, const void *buf, size_t len);
/* Pushes what was written to the system; ESM_EIO naming the file if any write since opening
 * failed (a.failed holds its errno). */
esm_status esm_appendf_flush(esm_appendf *a, esm_err *err);
/* Flushes and closes (also after a failure, to release the file); ESM_EIO as flush does. */
esm_status esm_appendf_close(esm_appendf *a, esm_err *err);

#endif
