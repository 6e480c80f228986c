/* One decode and resize path for every image source (Omniglot PNGs, users' PNG and JPEG files). */
#ifndef ESM_DATA_IMAGE_H
#define ESM_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"

/* A decoded image, 8 bits per sample, channels interleaved (HWC). */
typedef struct {
    int width, height, channels;
    uint8_t *px;
} esm_image;

/* PNG (8 bits or fewer per sample; alpha is composed on white) or JPEG (greyscale or YCbCr;
 * CMYK is refused), converted to `channels` (1 grey, 3 RGB). origin names the file in errors. */
esm_status esm_image_decode(const unsigned char *bytes, size_t len, int channels, esm_image *out,
                            const char *origin, esm_err *err);
esm_status esm_image_decode_png(const unsigned char *bytes, size_t len, int channels, esm_image *out,
                                const char *origin, esm_err *err);
esm_status esm_image_decode_jpeg(const unsigned char *bytes, size_t len, int channels, esm_image *out,
                                 const char *origin, esm_err *err);
void esm_image_free(esm_image *im);

/* Resizes to oh x ow into planar out[channels][oh][ow], axis by axis: area averaging where an
 * axis shrinks (each output averages the source span it covers), bilinear interpolation with
 * pixel centres aligned (edges clamped) where it grows, a copy where it keeps its size.
 * Weights are exact rationals, so each output is the exact value rounded to nearest, halfway to
 * even. invert: 255 - value (Omniglot's ink = 255). ESM_ENOMEM on allocation failure. */
esm_status esm_image_resize(const esm_image *im, int oh, int ow, int invert, uint8_t *out);

#endif
