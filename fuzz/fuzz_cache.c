/* The prepared cache: esm_cache_read of an arbitrary file, through esm_dataset_load's path. */
#include "esmeta/data.h"
#include "fuzz_target.h"

FUZZ_TARGET(cache)
{
    const char *path = esm_fuzz_file(".esmc", data, size);
    esm_dataset *ds = NULL;
    esm_err err = {0};
    if (path && esm_cache_read(path, &ds, &err) == ESM_OK)
        esm_dataset_free(ds);
    return 0;
}
