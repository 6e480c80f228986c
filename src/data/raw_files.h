/* The raw image files of one Omniglot half, read from a zip or a folder into memory. */
#ifndef ESM_DATA_RAW_FILES_H
#define ESM_DATA_RAW_FILES_H

#include <stddef.h>

#include "esmeta/core.h"

typedef struct {
    char *rel;             /* "<Alphabet>/<characterNN>/<file>.png" below the half's top folder */
    unsigned char *bytes;
    size_t len;
} esm_raw_file;

typedef struct {
    char origin[4096];     /* the zip or folder it came from, for error messages */
    esm_raw_file *files;
    size_t n, cap;
} esm_raw_list;

/* zip_path's entries "<top>/<Alphabet>/<char>/<file>.png" (directory entries optional). */
esm_status esm_raw_from_zip(const char *zip_path, const char *top, esm_raw_list *out, esm_err *err);
/* The same layout extracted: dir_path is the <top> folder itself. */
esm_status esm_raw_from_dir(const char *dir_path, esm_raw_list *out, esm_err *err);
/* Adds a file; takes ownership of bytes. */
esm_status esm_raw_add(esm_raw_list *l, const char *rel, unsigned char *bytes, size_t len, esm_err *err);
/* Sorts by rel so that character and drawing order never depends on the archive or folder. */
void esm_raw_sort(esm_raw_list *l);
void esm_raw_free(esm_raw_list *l);

/* Splits rel into alphabet/character and file name; returns 0 if it is not 3 components. */
int esm_raw_split_rel(const char *rel, size_t *char_len);

#endif
