#ifndef ESM_CORE_READ_FILE_H
#define ESM_CORE_READ_FILE_H

#include <stddef.h>

#include "esmeta/core.h"

/* Reads a whole file into a malloc'd buffer (one extra zero byte at the end, so text can be
 * used as a C string). what names the file's role in errors, e.g. "cache file". */
esm_status esm_read_file(const char *path, const char *what, unsigned char **buf, size_t *len, esm_err *err);

#endif
