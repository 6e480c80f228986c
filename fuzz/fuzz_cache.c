/* The prepared cache: esm_cache_read of an arbitrary file, through esm_dataset_load's path;
 * an input refused for its checksum alone is read again with the checksum fixed. */
#include "esmeta/data.h"
#include "fuzz_target.h"

FUZZ_TARGET(cache)
{
    esm_err err = {0};
    for (int fixed = 0; fixed < 2; fixed++) {
        const char *path = fixed ? esm_fuzz_file_crc(".esmc", data, size) : esm_fuzz_file(".esmc", data, size);
        esm_dataset *ds = NULL;
        err.code = ESM_OK;
        if (path && esm_cache_read(path, &ds, &err) == ESM_OK)
            esm_dataset_free(ds);
        if (err.code != ESM_ECHECKSUM)
            break;
    }
    return 0;
}
