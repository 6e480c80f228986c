/* Reads one Omniglot half from an extracted folder tree <top>/<Alphabet>/<characterNN>/<file>.png. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read_file.h"
#include "data/dir_walk.h"
#include "data/raw_files.h"

static int is_png(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".png") == 0;
}

/* <top>/<Alphabet>/<characterNN>/<file>.png: folders are entered down to the characters, files
 * are taken only at the depth of drawings. */
static esm_status visit_drawing(void *user, const char *rel, const char *path, int depth, int is_dir, int *take,
                                esm_err *err)
{
    if (is_dir) {
        *take = depth <= 2;
        return ESM_OK;
    }
    const char *name = strrchr(rel, '/');
    if (depth != 3 || !is_png(name ? name + 1 : rel))
        return ESM_OK;
    unsigned char *bytes;
    size_t len;
    esm_status st = esm_read_file(path, "image", &bytes, &len, err);
    if (st == ESM_OK)
        st = esm_raw_add(user, rel, bytes, len, err);
    *take = 1;
    return st;
}

esm_status esm_raw_from_dir(const char *dir_path, esm_raw_list *out, esm_err *err)
{
    snprintf(out->origin, sizeof out->origin, "%s", dir_path);
    esm_status st = esm_dir_walk(dir_path, visit_drawing, NULL, out, err);
    if (st == ESM_OK && out->n == 0)
        st = esm_fail(err, ESM_EFORMAT, "%s: no <Alphabet>/<characterNN>/*.png files inside", dir_path);
    return st;
}
