/* PNG (libpng's simplified API) and JPEG (libjpeg-turbo) decoding to 8-bit grey or RGB. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "data/image.h"

void esm_image_free(esm_image *im)
{
    free(im->px);
    im->px = NULL;
}

static esm_status alloc_pixels(esm_image *out, unsigned w, unsigned h, int channels, const char *origin, esm_err *err)
{
    if (w == 0 || h == 0 || w > 16384 || h > 16384)
        return esm_fail(err, ESM_EFORMAT, "%s: implausible image size %ux%u", origin, w, h);
    out->width = (int)w, out->height = (int)h, out->channels = channels;
    out->px = malloc((size_t)w * h * (size_t)channels);
    return out->px ? ESM_OK : esm_fail(err, ESM_ENOMEM, "%s: out of memory decoding", origin);
}

esm_status esm_image_decode_png(const unsigned char *bytes, size_t len, int channels, esm_image *out,
                                const char *origin, esm_err *err)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, bytes, len))
        return esm_fail(err, ESM_EFORMAT, "%s: not a readable PNG (%s)", origin, img.message);
    /* libpng would scale 16-bit samples down with a gamma conversion; refuse rather than
     * give pixel values that differ from what other tools read. */
    if (img.format & PNG_FORMAT_FLAG_LINEAR) {
        png_image_free(&img);
        return esm_fail(err, ESM_EFORMAT, "%s: 16-bit PNG is not supported; convert it to 8 bits per sample", origin);
    }
    esm_status st = alloc_pixels(out, img.width, img.height, channels, origin, err);
    if (st != ESM_OK) {
        png_image_free(&img);
        return st;
    }
    /* Colour or alpha images are converted (alpha composed on white) so any 8-bit PNG works. */
    img.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    png_color white = {255, 255, 255};
    if (!png_image_finish_read(&img, &white, out->px, 0, NULL)) {
        esm_image_free(out);
        return esm_fail(err, ESM_EFORMAT, "%s: corrupt PNG (%s)", origin, img.message);
    }
    return ESM_OK;
}

/* libjpeg reports errors by calling error_exit, which must not return: jump back instead.
 * Warnings (such as "premature end of data" of a truncated file) are errors here, since
 * libjpeg would otherwise fill the missing part with grey. */
typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void on_error(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    if (level < 0) /* a warning */
        on_error(cinfo);
}

esm_status esm_image_decode_jpeg(const unsigned char *bytes, size_t len, int channels, esm_image *out,
                                 const char *origin, esm_err *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err je;
    memset(&je, 0, sizeof je);
    out->px = NULL;
    cinfo.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = on_error;
    je.mgr.emit_message = on_message;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&cinfo);
        esm_image_free(out);
        return esm_fail(err, ESM_EFORMAT, "%s: corrupt or truncated JPEG (%s)", origin, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return esm_fail(err, ESM_EFORMAT, "%s: CMYK JPEG is not supported; convert it to RGB", origin);
    }
    cinfo.out_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_start_decompress(&cinfo);
    esm_status st = alloc_pixels(out, cinfo.output_width, cinfo.output_height, channels, origin, err);
    if (st != ESM_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    size_t stride = (size_t)out->width * channels;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out->px + cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return ESM_OK;
}

esm_status esm_image_decode(const unsigned char *bytes, size_t len, int channels, esm_image *out,
                            const char *origin, esm_err *err)
{
    out->px = NULL;
    if (channels != 1 && channels != 3)
        return esm_fail(err, ESM_EINVAL, "%s: %d channels asked for; use 1 (grey) or 3 (RGB)", origin, channels);
    if (len >= 8 && !memcmp(bytes, "\x89PNG\r\n\x1a\n", 8))
        return esm_image_decode_png(bytes, len, channels, out, origin, err);
    if (len >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        return esm_image_decode_jpeg(bytes, len, channels, out, origin, err);
    return esm_fail(err, ESM_EFORMAT, "%s: neither a PNG nor a JPEG file", origin);
}
