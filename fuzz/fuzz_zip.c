/* One archive as the loader ingests it: its PNG entries read by esm_raw_from_zip, then each
 * decoded and preprocessed as the data set's images are. */
#include <stdint.h>

#include "data/raw_files.h"
#include "esmeta/data.h"
#include "fuzz_target.h"

FUZZ_TARGET(zip)
{
    const char *path = esm_fuzz_file(".zip", data, size);
    esm_raw_list l = {0};
    esm_err err = {0};
    if (path && esm_raw_from_zip(path, "images_background", &l, &err) == ESM_OK) {
        for (size_t i = 0; i < l.n; i++) {
            uint8_t out[28 * 28];
            esm_png_preprocess(l.files[i].bytes, l.files[i].len, 0, 28, out, l.files[i].rel, &err);
        }
    }
    esm_raw_free(&l);
    return 0;
}
