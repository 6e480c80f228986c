/* A trainer checkpoint as eval and embed read it: esm_model_load of an arbitrary file. */
#include "esmeta/train.h"
#include "fuzz_target.h"

FUZZ_TARGET(ckpt)
{
    const char *path = esm_fuzz_file(".ckpt", data, size);
    esm_model m;
    esm_err err = {0};
    if (path && esm_model_load(path, &m, &err) == ESM_OK)
        esm_model_free(&m);
    return 0;
}
