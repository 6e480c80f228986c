/* One folder-tree walk for every source that reads a folder (Omniglot halves, users' class trees),
 * so that the path building, dot-file skipping and error wording live in one place. */
#ifndef ESM_DATA_DIR_WALK_H
#define ESM_DATA_DIR_WALK_H

#include "esmeta/core.h"

/* Called for every entry below root except dot-entries, in readdir order. rel is the entry's path
 * below root, path its full path, depth its depth (1 = directly inside root). Sets *take: for a
 * folder, to walk into it; for a file, to count it as taken. */
typedef esm_status (*esm_dir_visit_fn)(void *user, const char *rel, const char *path, int depth, int is_dir,
                                       int *take, esm_err *err);
/* Called after each folder below root has been walked, with how many of its entries were taken. */
typedef esm_status (*esm_dir_leave_fn)(void *user, const char *path, int n_taken, esm_err *err);

/* leave may be NULL. Stops at the first status that is not ESM_OK and returns it. */
esm_status esm_dir_walk(const char *root, esm_dir_visit_fn visit, esm_dir_leave_fn leave, void *user,
                        esm_err *err);

#endif
