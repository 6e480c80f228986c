/* Pixel values against an independent decoder: tests/golden/images/ were made, decoded and
 * resized once by tests/golden/gen_image_reference.py (Pillow's decode, the stated resize
 * formulas in exact rational arithmetic); here esmeta decodes and resizes the same files.
 * PNG and JPEG must agree exactly: Pillow decodes JPEG with libjpeg-turbo at the same default
 * settings esmeta uses (accurate integer IDCT, smooth chroma upsampling). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/read_file.h"
#include "data/image.h"
#include "esmeta.h"
#include "harness.h"

static void golden_path(const char *rel, char *path, size_t cap)
{
    const char *dir = getenv("ESM_TEST_SRCDIR");
    snprintf(path, cap, "%s%stests/golden/%s", dir ? dir : "", dir ? "/" : "", rel);
}

static int read_image(const char *name, unsigned char **bytes, size_t *len, char *path, size_t cap)
{
    esm_err err = {0};
    char rel[300];
    snprintf(rel, sizeof rel, "images/%s", name);
    golden_path(rel, path, cap);
    return esm_read_file(path, "image", bytes, len, &err) == ESM_OK;
}

/* Compares n values of got with the next n of the reference file; returns the mismatches and
 * describes the first in where. */
static int compare(FILE *ref, const uint8_t *got, size_t n, char *where, size_t cap)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        int want;
        if (fscanf(ref, "%d", &want) != 1) {
            snprintf(where, cap, "reference ends after %zu of %zu values", i, n);
            return (int)(n - i);
        }
        if (got[i] != want && bad++ == 0)
            snprintf(where, cap, "value %zu: esmeta %d, reference %d", i, got[i], want);
    }
    return bad;
}

TEST(image_reference_decode_and_resize_match_pillow)
{
    char path[4400];
    golden_path("image_reference.txt", path, sizeof path);
    FILE *ref = fopen(path, "r");
    REQUIREF(ref, "cannot open %s (run from the repository root or set ESM_TEST_SRCDIR)", path);
    char line[512], name[256], kind[16];
    int channels, h, w, decodes = 0, resizes = 0;
    while (fgets(line, sizeof line, ref)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        REQUIREF(sscanf(line, "%15s %255s %d %d %d", kind, name, &channels, &h, &w) == 5 && h > 0 && w > 0 &&
                     h <= 256 && w <= 256 && (channels == 1 || channels == 3),
                 "bad record header: %s", line);
        unsigned char *bytes = NULL;
        size_t len = 0;
        char img_path[4400];
        REQUIREF(read_image(name, &bytes, &len, img_path, sizeof img_path), "cannot read %s", img_path);
        esm_err err = {0};
        uint8_t *got = malloc((size_t)channels * h * w);
        REQUIRE(got);
        char where[200] = "";
        int bad;
        if (!strcmp(kind, "decode")) {
            esm_image im;
            esm_status st = esm_image_decode(bytes, len, channels, &im, name, &err);
            CHECKF(st == ESM_OK, "%s: %s", name, err.msg);
            CHECKF(st != ESM_OK || (im.width == w && im.height == h), "%s: %dx%d, reference %dx%d", name,
                   im.height, im.width, h, w);
            bad = st == ESM_OK ? compare(ref, im.px, (size_t)channels * h * w, where, sizeof where) : -1;
            if (st == ESM_OK)
                esm_image_free(&im);
            decodes++;
        } else {
            esm_image_shape shape = {.channels = channels, .height = h, .width = w};
            esm_status st = esm_image_preprocess(bytes, len, &shape, got, name, &err);
            CHECKF(st == ESM_OK, "%s: %s", name, err.msg);
            bad = st == ESM_OK ? compare(ref, got, (size_t)channels * h * w, where, sizeof where) : -1;
            resizes++;
        }
        CHECKF(bad == 0, "%s %s, %d channel(s), %dx%d: %d values differ (%s)", kind, name, channels, h, w, bad,
               where);
        free(got);
        free(bytes);
        if (bad < 0)
            break; /* the values of a record not compared are still in the stream */
    }
    fclose(ref);
    /* every file and conversion the generator wrote: 7 decodes, each at 4 sizes */
    CHECKF(decodes == 7 && resizes == 28, "%d decode and %d resize records, expected 7 and 28", decodes, resizes);
}
