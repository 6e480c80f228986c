/* PNG -> preprocessed image: decode with libpng, area-average down to the model's size,
 * invert so that ink = 1. The one path used for training data and for users' own images. */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "core/read_file.h"
#include "esmeta/data.h"

/* Area-averaging weights for shrinking n source samples to m: output i covers
 * [i*n/m, (i+1)*n/m) of the source and each source pixel counts by its overlap. Each output
 * touches only a few source pixels, so weights are kept as (first index, count, values). */
typedef struct {
    int first, count;
    double *w;
} box_tap;

/* Taps per output: at most ceil(n/m) + 1. */
static int box_width(int n, int m) { return (n + m - 1) / m + 1; }

static void box_taps(int n, int m, box_tap *taps, double *wbuf)
{
    double scale = (double)n / m;
    for (int i = 0; i < m; i++) {
        taps[i].w = wbuf + (size_t)i * box_width(n, m);
        double lo = i * scale, hi = (i + 1) * scale;
        int k0 = (int)floor(lo), k1 = (int)ceil(hi);
        if (k1 > n)
            k1 = n;
        taps[i].first = k0;
        taps[i].count = k1 - k0;
        for (int k = k0; k < k1; k++) {
            double a = k > lo ? k : lo, b = k + 1 < hi ? k + 1 : hi;
            taps[i].w[k - k0] = b > a ? (b - a) / scale : 0.0;
        }
    }
}

/* gray is (sh, sw) with 0 = ink; out is (oh, ow) with 255 = ink. */
static esm_status box_resize_invert(const uint8_t *gray, int sh, int sw, int oh, int ow, uint8_t *out)
{
    size_t nwy = (size_t)oh * box_width(sh, oh), nwx = (size_t)ow * box_width(sw, ow);
    box_tap *ty = malloc(sizeof *ty * (size_t)(oh + ow));
    double *rows = malloc(sizeof *rows * ((size_t)oh * sw + nwy + nwx));
    if (!ty || !rows) {
        free(ty), free(rows);
        return ESM_ENOMEM;
    }
    box_tap *tx = ty + oh;
    box_taps(sh, oh, ty, rows + (size_t)oh * sw);
    box_taps(sw, ow, tx, rows + (size_t)oh * sw + nwy);
    for (int i = 0; i < oh; i++) /* rows = Wy * gray : (oh, sw) */
        for (int x = 0; x < sw; x++) {
            double s = 0;
            for (int k = 0; k < ty[i].count; k++)
                s += ty[i].w[k] * gray[(size_t)(ty[i].first + k) * sw + x];
            rows[(size_t)i * sw + x] = s;
        }
    for (int i = 0; i < oh; i++) /* out = 255 - rows * Wx^T */
        for (int j = 0; j < ow; j++) {
            double s = 0;
            for (int k = 0; k < tx[j].count; k++)
                s += tx[j].w[k] * rows[(size_t)i * sw + tx[j].first + k];
            double v = 255.0 - s;
            out[(size_t)i * ow + j] = (uint8_t)lrint(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    free(ty);
    free(rows);
    return ESM_OK;
}

esm_status esm_png_preprocess(const unsigned char *png, size_t len, int expect_size, int out_size,
                              uint8_t *out, const char *origin, esm_err *err)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, png, len))
        return esm_fail(err, ESM_EFORMAT, "%s: not a readable PNG (%s)", origin, img.message);
    if (expect_size > 0 && ((int)img.width != expect_size || (int)img.height != expect_size)) {
        esm_status st = esm_fail(err, ESM_EFORMAT, "%s: image is %ux%u, expected %dx%d", origin, img.width,
                                 img.height, expect_size, expect_size);
        png_image_free(&img);
        return st;
    }
    /* Colour or alpha images are flattened to grey (on white) so users' own files work too. */
    img.format = PNG_FORMAT_GRAY;
    size_t n = (size_t)img.width * img.height;
    uint8_t *gray = malloc(n ? n : 1);
    if (!gray) {
        png_image_free(&img);
        return esm_fail(err, ESM_ENOMEM, "%s: out of memory decoding", origin);
    }
    png_color white = {255, 255, 255};
    if (!png_image_finish_read(&img, &white, gray, 0, NULL)) {
        esm_status st = esm_fail(err, ESM_EFORMAT, "%s: corrupt PNG (%s)", origin, img.message);
        free(gray);
        return st;
    }
    esm_status st = box_resize_invert(gray, (int)img.height, (int)img.width, out_size, out_size, out);
    free(gray);
    if (st != ESM_OK)
        return esm_fail(err, st, "%s: out of memory resizing", origin);
    return ESM_OK;
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
