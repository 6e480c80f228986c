/* esm_dataset: allocation, decoding of raw files into it, split texts, freeing. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "data/dataset_internal.h"

esm_status esm_dataset_alloc(int n_chars, size_t n_total, int channels, int height, int width, esm_dataset **out,
                             esm_err *err)
{
    esm_dataset *ds = calloc(1, sizeof *ds);
    size_t img = (size_t)channels * height * width;
    if (ds) {
        ds->n_chars = n_chars;
        ds->n_total = n_total;
        ds->channels = channels, ds->height = height, ds->width = width;
        ds->names = calloc((size_t)n_chars + 1, sizeof *ds->names);
        ds->background = calloc((size_t)n_chars + 1, 1);
        ds->n_images = calloc((size_t)n_chars + 1, sizeof *ds->n_images);
        ds->first = calloc((size_t)n_chars + 1, sizeof *ds->first);
        ds->pixels = malloc(n_total * img + 1);
    }
    if (!ds || !ds->names || !ds->background || !ds->n_images || !ds->first || !ds->pixels) {
        esm_dataset_free(ds);
        return esm_fail(err, ESM_ENOMEM, "out of memory for %d characters, %zu images", n_chars, n_total);
    }
    *out = ds;
    return ESM_OK;
}

void esm_dataset_free(esm_dataset *ds)
{
    if (!ds)
        return;
    for (int i = 0; ds->names && i < ds->n_chars; i++)
        free(ds->names[i]);
    for (int i = 0; i < ds->n_splits; i++) {
        free(ds->split_names[i]);
        free(ds->split_texts[i]);
    }
    free(ds->split_names);
    free(ds->split_texts);
    free(ds->names);
    free(ds->background);
    free(ds->n_images);
    free(ds->first);
    if (ds->mapping)
        munmap(ds->mapping, ds->mapping_len);
    else
        free(ds->pixels);
    free(ds);
}

esm_status esm_dataset_add_split(esm_dataset *ds, const char *name, char *text, esm_err *err)
{
    char **names = realloc(ds->split_names, (size_t)(ds->n_splits + 1) * sizeof *names);
    if (names)
        ds->split_names = names;
    char **texts = realloc(ds->split_texts, (size_t)(ds->n_splits + 1) * sizeof *texts);
    if (texts)
        ds->split_texts = texts;
    char *copy = strdup(name);
    if (!names || !texts || !copy) {
        free(copy);
        free(text);
        return esm_fail(err, ESM_ENOMEM, "out of memory storing split %s", name);
    }
    ds->split_names[ds->n_splits] = copy;
    ds->split_texts[ds->n_splits] = text;
    ds->n_splits++;
    return ESM_OK;
}

/* Fills names, halves and image counts from the sorted file lists; returns the character count. */
static esm_status index_characters(esm_dataset *ds, const esm_raw_list halves[2], esm_err *err)
{
    int c = -1;
    size_t img = 0;
    for (int h = 0; h < 2; h++) {
        const char *prev = NULL;
        size_t prev_len = 0;
        for (size_t i = 0; i < halves[h].n; i++, img++) {
            const char *rel = halves[h].files[i].rel;
            size_t len;
            if (!esm_raw_split_rel(rel, &len))
                return esm_fail(err, ESM_EFORMAT, "%s: unexpected file %s", halves[h].origin, rel);
            if (!prev || len != prev_len || strncmp(prev, rel, len) != 0) {
                ds->names[++c] = strndup(rel, len);
                if (!ds->names[c])
                    return esm_fail(err, ESM_ENOMEM, "out of memory");
                ds->background[c] = h == 0;
                ds->first[c] = img;
                prev = rel, prev_len = len;
            }
            ds->n_images[c]++;
        }
    }
    return ESM_OK;
}

static int count_characters(const esm_raw_list *l)
{
    int n = 0;
    for (size_t i = 0; i < l->n; i++) {
        size_t a, b;
        if (!esm_raw_split_rel(l->files[i].rel, &a))
            continue;
        if (i == 0 || !esm_raw_split_rel(l->files[i - 1].rel, &b) || a != b ||
            strncmp(l->files[i].rel, l->files[i - 1].rel, a) != 0)
            n++;
    }
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Split files name characters without the half, so a name may appear in only one half. */
static esm_status check_unique_names(const esm_dataset *ds, esm_err *err)
{
    char **sorted = malloc(sizeof *sorted * (size_t)(ds->n_chars + 1));
    if (!sorted)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    memcpy(sorted, ds->names, sizeof *sorted * (size_t)ds->n_chars);
    qsort(sorted, (size_t)ds->n_chars, sizeof *sorted, cmp_str);
    esm_status st = ESM_OK;
    for (int i = 1; i < ds->n_chars && st == ESM_OK; i++)
        if (!strcmp(sorted[i], sorted[i - 1]))
            st = esm_fail(err, ESM_EFORMAT, "character %s appears in both images_background and images_evaluation",
                          sorted[i]);
    free(sorted);
    return st;
}

/* Decoding is the slow part, so it runs in parallel; the first error (lowest index) is the one
 * reported, so it does not depend on thread timing. */
esm_status esm_decode_batch(esm_decode_fn decode, const void *ctx, size_t first, size_t count, uint8_t *out,
                            size_t img, int threads, esm_err *err)
{
    esm_status *status = calloc(count + 1, sizeof *status);
    esm_err *errs = calloc(count + 1, sizeof *errs);
    if (!status || !errs) {
        free(status), free(errs);
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    }
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads > 0 ? threads : omp_get_max_threads())
    for (long i = 0; i < (long)count; i++)
        status[i] = decode(ctx, first + (size_t)i, out + (size_t)i * img, &errs[i]);
    esm_status st = ESM_OK;
    for (size_t i = 0; i < count && st == ESM_OK; i++)
        if (status[i] != ESM_OK) {
            st = status[i];
            if (err)
                *err = errs[i];
        }
    free(status);
    free(errs);
    return st;
}

/* Chunks keep progress reports coming from one thread. */
esm_status esm_dataset_decode(esm_dataset *ds, esm_decode_fn decode, const void *ctx, int threads,
                              esm_progress_fn progress, void *progress_user, esm_err *err)
{
    size_t n = ds->n_total, img = (size_t)ds->channels * ds->height * ds->width, chunk = 2048;
    esm_status st = ESM_OK;
    for (size_t base = 0; base < n && st == ESM_OK; base += chunk) {
        size_t count = base + chunk < n ? chunk : n - base;
        st = esm_decode_batch(decode, ctx, base, count, ds->pixels + base * img, img, threads, err);
        if (progress)
            progress(progress_user, "decoding images", base + count, n);
    }
    return st;
}

typedef struct {
    const esm_raw_list *halves;
    const esm_load_opts *o;
} halves_ctx;

static esm_status decode_half_file(const void *ctx, size_t i, uint8_t *out, esm_err *err)
{
    const halves_ctx *h = ctx;
    const esm_raw_list *l = i < h->halves[0].n ? &h->halves[0] : &h->halves[1];
    const esm_raw_file *f = &l->files[i < h->halves[0].n ? i : i - h->halves[0].n];
    char origin[8400];
    snprintf(origin, sizeof origin, "%s in %s", f->rel, l->origin);
    return esm_png_preprocess(f->bytes, f->len, h->o->src_size, h->o->out_size, out, origin, err);
}

esm_status esm_dataset_from_raw(const esm_raw_list halves[2], const esm_load_opts *o, esm_dataset **out,
                                esm_err *err)
{
    int n_chars = count_characters(&halves[0]) + count_characters(&halves[1]);
    esm_dataset *ds;
    esm_status st = esm_dataset_alloc(n_chars, halves[0].n + halves[1].n, 1, o->out_size, o->out_size, &ds, err);
    if (st != ESM_OK)
        return st;
    ds->inverted = 1; /* esm_png_preprocess: ink = 255 */
    st = index_characters(ds, halves, err);
    if (st == ESM_OK)
        st = check_unique_names(ds, err);
    if (st == ESM_OK)
        st = esm_dataset_decode(ds, decode_half_file, &(halves_ctx){halves, o}, o->threads, o->progress,
                                o->progress_user, err);
    if (st != ESM_OK) {
        esm_dataset_free(ds);
        return st;
    }
    *out = ds;
    return ESM_OK;
}

/* One affine map per channel, pixel * scale - shift, shared by episodes and esm_pixels_to_float
 * so that an image embedded on its own sees the very floats it would see in an episode. */
static void channel_affine(const esm_dataset *ds, int c, float *scale, float *shift)
{
    *scale = ds->normalize ? 1.0f / (255.0f * ds->std[c]) : 1.0f / 255.0f;
    *shift = ds->normalize ? ds->mean[c] / ds->std[c] : 0.0f;
}

void esm_pixels_to_float(const esm_dataset *ds, const uint8_t *px, float *out)
{
    size_t plane = (size_t)ds->height * ds->width;
    for (int c = 0; c < ds->channels; c++) {
        float scale, shift;
        channel_affine(ds, c, &scale, &shift);
        for (size_t k = 0; k < plane; k++)
            out[c * plane + k] = px[c * plane + k] * scale - shift;
    }
}

void esm_image_to_float(const esm_dataset *ds, int chr, int img, int rot, float *out)
{
    int h = ds->height, w = ds->width;
    const uint8_t *src = ds->pixels + (ds->first[chr] + (size_t)img) * (size_t)ds->channels * h * w;
    /* Counter-clockwise quarter turns (PIL's Image.rotate convention). Odd turns need square images. */
    for (int c = 0; c < ds->channels; c++, src += (size_t)h * w, out += (size_t)h * w) {
        float scale, shift;
        channel_affine(ds, c, &scale, &shift);
        for (int r = 0; r < h; r++)
            for (int q = 0; q < w; q++) {
                int sr, sq;
                switch (rot & 3) {
                case 0: sr = r, sq = q; break;
                case 1: sr = q, sq = w - 1 - r; break;
                case 2: sr = h - 1 - r, sq = w - 1 - q; break;
                default: sr = h - 1 - q, sq = r; break;
                }
                out[(size_t)r * w + q] = src[(size_t)sr * w + sq] * scale - shift;
            }
    }
}

void esm_channel_acc_add(esm_channel_acc *a, const uint8_t *px, size_t n_images, int channels, size_t plane)
{
    for (size_t i = 0; i < n_images; i++)
        for (int c = 0; c < channels; c++) {
            const uint8_t *p = px + (i * channels + c) * plane;
            uint64_t s1 = 0, s2 = 0; /* exact per image, so the order of images cannot matter */
            for (size_t k = 0; k < plane; k++)
                s1 += p[k], s2 += (uint64_t)p[k] * p[k];
            a->sum[c] += (double)s1, a->sq[c] += (double)s2;
        }
    a->n_images += n_images;
}

void esm_channel_acc_finish(const esm_channel_acc *a, esm_dataset *ds)
{
    double n = (double)a->n_images * ds->height * ds->width;
    for (int c = 0; c < ds->channels; c++) {
        double mean = a->sum[c] / n / 255.0, var = a->sq[c] / n / (255.0 * 255.0) - mean * mean;
        ds->mean[c] = (float)mean;
        /* a constant channel would divide by zero: its floor keeps it (nearly) constant */
        ds->std[c] = (float)(var > 1e-6 ? sqrt(var) : 1e-3);
    }
}

void esm_dataset_channel_stats(esm_dataset *ds)
{
    esm_channel_acc a = {0};
    esm_channel_acc_add(&a, ds->pixels, ds->n_total, ds->channels, (size_t)ds->height * ds->width);
    esm_channel_acc_finish(&a, ds);
}
