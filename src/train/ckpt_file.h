/* The checkpoint container: a versioned file of named sections with a CRC-32 over everything.
 * Trainers decide what goes in; this file only guarantees that what comes back out is exactly
 * what was saved, or a clear error.
 *
 * Layout (little-endian): "ESMCKPT\0" | u32 format version | u32 n_sections
 *   n_sections x { char tag[16] (zero-padded) | u64 length | bytes }
 *   u32 CRC-32 of every byte before it */
#ifndef ESM_TRAIN_CKPT_FILE_H
#define ESM_TRAIN_CKPT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"

#define ESM_CKPT_TAG_LEN 16

typedef struct {
    char tag[ESM_CKPT_TAG_LEN + 1];
    const void *data;
    size_t len;
} esm_ckpt_section;

/* Writes all sections atomically (temporary file, fsync, rename). */
esm_status esm_ckpt_write(const char *path, const esm_ckpt_section *sections, int n, esm_err *err);

/* A loaded checkpoint: the whole file in memory, sections pointing into it. */
typedef struct {
    unsigned char *buf;
    size_t len;
    int n;
    esm_ckpt_section *sections;
    char path[4096];
} esm_ckpt;

esm_status esm_ckpt_read(const char *path, esm_ckpt *out, esm_err *err);
void esm_ckpt_free(esm_ckpt *c);
/* The section with this tag; ENOTFOUND (naming the file) if absent. With want_len > 0 the
 * length must match too (EMISMATCH otherwise). */
esm_status esm_ckpt_get(const esm_ckpt *c, const char *tag, size_t want_len, const void **data, size_t *len,
                        esm_err *err);

#endif
