#define _DEFAULT_SOURCE
#include "data/dir_walk.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *root;
    esm_dir_visit_fn visit;
    esm_dir_leave_fn leave;
    void *user;
} walk_ctx;

static esm_status walk(const walk_ctx *c, const char *rel, int depth, esm_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", c->root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return esm_fail(err, ESM_EIO, "%s: cannot open folder (%s)", path, strerror(errno));
    esm_status st = ESM_OK;
    int n_taken = 0;
    struct dirent *e;
    while (st == ESM_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char child_rel[4096], child[8192];
        snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        snprintf(child, sizeof child, "%s/%s", c->root, child_rel);
        struct stat sb;
        if (stat(child, &sb) != 0)
            continue;
        int is_dir = S_ISDIR(sb.st_mode), take = 0;
        if (!is_dir && !S_ISREG(sb.st_mode))
            continue;
        st = c->visit(c->user, child_rel, child, depth + 1, is_dir, &take, err);
        n_taken += take;
        if (st == ESM_OK && is_dir && take)
            st = walk(c, child_rel, depth + 1, err);
    }
    closedir(d);
    if (st == ESM_OK && depth > 0 && c->leave)
        st = c->leave(c->user, path, n_taken, err);
    return st;
}

esm_status esm_dir_walk(const char *root, esm_dir_visit_fn visit, esm_dir_leave_fn leave, void *user,
                        esm_err *err)
{
    walk_ctx c = {root, visit, leave, user};
    return walk(&c, "", 0, err);
}
