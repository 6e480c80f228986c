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
/* Runs decode over every image of ds with `threads` threads (0: OpenMP default), reporting
 * progress; the first failure by image index is returned. */
esm_status esm_dataset_decode(esm_dataset *ds, esm_decode_fn decode, const void *ctx, int threads,
                              esm_progress_fn progress, void *progress_user, esm_err *err);

/* Fills ds->mean and ds->std from its pixels (leaves ds->normalize as it is). */
void esm_dataset_channel_stats(esm_dataset *ds);

#endif
