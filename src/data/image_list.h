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
} esm_img_list;

esm_status esm_img_list_add(esm_img_list *l, const char *cls, size_t cls_len, const char *file, esm_err *err);
void esm_img_list_free(esm_img_list *l);
/* Sorts by class then file, builds the dataset and decodes every file (in parallel). */
esm_status esm_dataset_from_img_list(esm_img_list *l, const esm_images_opts *o, esm_dataset **out, esm_err *err);

#endif
