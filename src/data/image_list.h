/* A user's image set before decoding: (class, file) pairs, from a folder tree or CSV lists. */
#ifndef ESM_DATA_IMAGE_LIST_H
#define ESM_DATA_IMAGE_LIST_H

#include <stddef.h>

#include "esmeta/data.h"

typedef struct {
    char *cls;   /* class name */
    char *file;  /* path below the list's root */
} esm_img_entry;

typedef struct {
    char root[4096];
    esm_img_entry *e;
    size_t n, cap;
    int n_splits;            /* CSV sources: one split per file, in the files' order */
    char *split_name[64];
    char *split_text[64];
} esm_img_list;

esm_status esm_img_list_add(esm_img_list *l, const char *cls, size_t cls_len, const char *file, esm_err *err);
void esm_img_list_free(esm_img_list *l);
/* Lists a class-folder tree (esm_dataset_from_images' rules) into an empty l. */
esm_status esm_img_list_from_dir(const char *dir, esm_img_list *l, esm_err *err);
/* Lists CSV split files (esm_dataset_from_csv's rules) into an empty l, with their splits. */
esm_status esm_img_list_from_csv(const char *images_dir, const char *const *csvs, int n_csv, esm_img_list *l,
                                 esm_err *err);
/* Sorts l by class then file and builds the dataset: names, counts and l's splits (moved out of
 * l). with_pixels: decodes every file into memory (in parallel) and computes the statistics;
 * otherwise the dataset has no pixels yet (n_total set, pixels a 1-byte placeholder) and ctx gets
 * what esm_img_list_decode needs to decode image i. */
typedef struct {
    const esm_img_list *list;
    const esm_image_shape *shape;
} esm_img_list_ctx;
esm_status esm_img_list_dataset(esm_img_list *l, const esm_images_opts *o, int with_pixels, esm_dataset **out,
                                esm_err *err);
/* esm_decode_fn over an esm_img_list_ctx: reads and preprocesses file i of the sorted list. */
esm_status esm_img_list_decode(const void *ctx, size_t i, uint8_t *out, esm_err *err);

#endif
