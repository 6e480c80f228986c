/* A trainer checkpoint as eval and embed read it: esm_model_load of an arbitrary file; an
 * input refused for its checksum alone is loaded again with the checksum fixed, so that the
 * configuration and sections behind it are fuzzed too. */
#include "esmeta/train.h"
#include "fuzz_target.h"

FUZZ_TARGET(ckpt)
{
    esm_err err = {0};
    for (int fixed = 0; fixed < 2; fixed++) {
        const char *path = fixed ? esm_fuzz_file_crc(".ckpt", data, size) : esm_fuzz_file(".ckpt", data, size);
        esm_model m;
        err.code = ESM_OK;
        if (path && esm_model_load(path, &m, &err) == ESM_OK)
            esm_model_free(&m);
        if (err.code != ESM_ECHECKSUM)
            break;
    }
    return 0;
}
