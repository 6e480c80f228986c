/* Construction helpers shared by the folder loader and the cache reader. */
#ifndef ESM_DATA_DATASET_INTERNAL_H
#define ESM_DATA_DATASET_INTERNAL_H

#include "data/raw_files.h"
#include "esmeta/data.h"

/* An empty dataset with room for n_chars characters and n_total images. */
esm_status esm_dataset_alloc(int n_chars, size_t n_total, int channels, int height, int width, esm_dataset **out,
                             esm_err *err);
/* Decodes both halves (sorted) into a dataset: background first, then evaluation. */
esm_status esm_dataset_from_raw(const esm_raw_list halves[2], const esm_load_opts *o, esm_dataset **out,
                                esm_err *err);
/* Takes ownership of text. */
esm_status esm_dataset_add_split(esm_dataset *ds, const char *name, char *text, esm_err *err);

/* Decodes image i of ds into its slot (n_total of them): called in parallel, in any order. */
typedef esm_status (*esm_decode_fn)(const void *ctx, size_t i, uint8_t *out, esm_err *err);
/* Decodes images first .. first+count-1 into out (img bytes each) with `threads` threads (0:
 * OpenMP default); the first failure by image index is returned. */
esm_status esm_decode_batch(esm_decode_fn decode, const void *ctx, size_t first, size_t count, uint8_t *out,
                            size_t img, int threads, esm_err *err);
/* Runs decode over every image of ds with `threads` threads (0: OpenMP default), reporting
 * progress; the first failure by image index is returned. */
esm_status esm_dataset_decode(esm_dataset *ds, esm_decode_fn decode, const void *ctx, int threads,
                              esm_progress_fn progress, void *progress_user, esm_err *err);

/* Fills ds->mean and ds->std from its pixels (leaves ds->normalize as it is). */
void esm_dataset_channel_stats(esm_dataset *ds);
/* The same a batch at a time: sums per channel, added image by image in order, so a set
 * streamed in batches gets the statistics it would get in one piece. */
typedef struct {
    double sum[4], sq[4];
    size_t n_images;
} esm_channel_acc;
void esm_channel_acc_add(esm_channel_acc *a, const uint8_t *px, size_t n_images, int channels, size_t plane);
void esm_channel_acc_finish(const esm_channel_acc *a, esm_dataset *ds);

/* Writes ds (names, counts and splits set; no pixels) as a cache file at path, decoding its
 * images a batch at a time with decode and writing each batch out: memory holds one batch of
 * batch_bytes (0: ESM_STREAM_BATCH_BYTES; at least one image), never the set. Fills ds->mean and
 * ds->std. Atomic as esm_cache_write. */
#define ESM_STREAM_BATCH_BYTES ((size_t)16 << 20)
esm_status esm_cache_write_decoded(esm_dataset *ds, esm_decode_fn decode, const void *ctx, int threads,
                                   size_t batch_bytes, esm_progress_fn progress, void *progress_user,
                                   const char *path, esm_err *err);

#endif
