/* Reads one Omniglot half from an extracted folder tree <top>/<Alphabet>/<characterNN>/<file>.png. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/read_file.h"
#include "data/raw_files.h"

static int is_png(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".png") == 0;
}

/* Walks the tree level by level; depth 0 is the top folder, files are taken at depth 2. */
static esm_status walk(const char *root, const char *rel, int depth, esm_raw_list *out, esm_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return esm_fail(err, ESM_EIO, "%s: cannot open folder (%s)", path, strerror(errno));
    esm_status st = ESM_OK;
    struct dirent *e;
    while (st == ESM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char child_rel[4096], child[8192];
        snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(child, sizeof child, "%s/%s", root, child_rel);
        struct stat sb;
        if (stat(child, &sb) != 0)
            continue;
        if (depth < 2 && S_ISDIR(sb.st_mode)) {
            st = walk(root, child_rel, depth + 1, out, err);
        } else if (depth == 2 && S_ISREG(sb.st_mode) && is_png(e->d_name)) {
            unsigned char *bytes;
            size_t len;
            st = esm_read_file(child, "image", &bytes, &len, err);
            if (st == ESM_OK)
                st = esm_raw_add(out, child_rel, bytes, len, err);
        }
    }
    closedir(d);
    return st;
}

esm_status esm_raw_from_dir(const char *dir_path, esm_raw_list *out, esm_err *err)
{
    snprintf(out->origin, sizeof out->origin, "%s", dir_path);
    esm_status st = walk(dir_path, "", 0, out, err);
    if (st == ESM_OK && out->n == 0)
        st = esm_fail(err, ESM_EFORMAT, "%s: no <Alphabet>/<characterNN>/*.png files inside", dir_path);
    return st;
}
