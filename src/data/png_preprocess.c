/* Encoded image -> preprocessed pixels: decode, resize (area averaging down, bilinear up),
 * optionally invert. The one path for Omniglot's PNGs and users' own PNG and JPEG files. */
#include <stdlib.h>

#include "core/read_file.h"
#include "data/image.h"
#include "esmeta/data.h"

static esm_status finish(esm_status st, esm_image *im, int expect_size, const esm_image_shape *shape, uint8_t *out,
                         const char *origin, esm_err *err)
{
    if (st != ESM_OK)
        return st;
    if (expect_size > 0 && (im->width != expect_size || im->height != expect_size))
        st = esm_fail(err, ESM_EFORMAT, "%s: image is %dx%d, expected %dx%d", origin, im->width, im->height,
                      expect_size, expect_size);
    else if (esm_image_resize(im, shape->height, shape->width, shape->invert, out) != ESM_OK)
        st = esm_fail(err, ESM_ENOMEM, "%s: out of memory resizing", origin);
    esm_image_free(im);
    return st;
}

esm_status esm_image_preprocess(const unsigned char *bytes, size_t len, const esm_image_shape *shape, uint8_t *out,
                                const char *origin, esm_err *err)
{
    esm_image im;
    esm_status st = esm_image_decode(bytes, len, shape->channels, &im, origin, err);
    return finish(st, &im, 0, shape, out, origin, err);
}

esm_status esm_image_preprocess_file(const char *path, const esm_image_shape *shape, uint8_t *out, esm_err *err)
{
    unsigned char *bytes;
    size_t len;
    esm_status st = esm_read_file(path, "image", &bytes, &len, err);
    if (st != ESM_OK)
        return st;
    st = esm_image_preprocess(bytes, len, shape, out, path, err);
    free(bytes);
    return st;
}

esm_status esm_png_preprocess(const unsigned char *png, size_t len, int expect_size, int out_size,
                              uint8_t *out, const char *origin, esm_err *err)
{
    esm_image_shape shape = {.channels = 1, .height = out_size, .width = out_size, .invert = 1};
    esm_image im = {0};
    esm_status st = esm_image_decode_png(png, len, 1, &im, origin, err);
    return finish(st, &im, expect_size, &shape, out, origin, err);
}

esm_status esm_png_preprocess_file(const char *path, int expect_size, int out_size, uint8_t *out, esm_err *err)
{
    unsigned char *png;
    size_t len;
    esm_status st = esm_read_file(path, "image", &png, &len, err);
    if (st != ESM_OK)
        return st;
    st = esm_png_preprocess(png, len, expect_size, out_size, out, path, err);
    free(png);
    return st;
}
