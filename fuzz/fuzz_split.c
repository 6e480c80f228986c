/* Split files: esm_split_parse of arbitrary text against a small synthetic data set. */
#include <stdlib.h>
#include <string.h>

#include "esmeta/data.h"
#include "fuzz_target.h"

FUZZ_TARGET(split)
{
    static char *names[] = {"Latin/character01", "Latin/character02", "Greek/character01", "Greek/character10"};
    static int n_images[] = {20, 20, 19, 20};
    esm_dataset ds = {.height = 28, .width = 28, .channels = 1, .n_chars = 4, .names = names, .n_images = n_images};
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    esm_split sp;
    esm_err err = {0};
    if (esm_split_parse(&ds, text, "fuzz.txt", &sp, &err) == ESM_OK)
        esm_split_free(&sp);
    free(text);
    return 0;
}
