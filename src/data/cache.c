/* The prepared-data cache: one binary file that loads in milliseconds.
 *
 * Layout (little-endian), version 3:
 *   "ESMCACHE" | u32 version | u32 channels, height, width | u32 n_chars | u64 n_total | u32 n_splits
 *   u32 normalize | channels x { f32 mean | f32 std }             (absent in version 1: no normalisation)
 *   u32 inverted: 0 as decoded, 1 as 255 - value, 2 not known     (absent before version 3: not known)
 *   n_chars x  { u32 n_images | u8 background | u16 name_len | name }
 *   n_splits x { u16 name_len | name | u32 text_len | text }
 *   pixels: n_total x channels x height x width bytes
 *   u32 CRC-32 of every byte before it */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/bytes.h"
#include "data/dataset_internal.h"

#define CACHE_MAGIC "ESMCACHE"
#define CACHE_VERSION 3u
#define CACHE_OLDEST 1u /* still read: version 1 lacks the channel statistics, 2 the inversion */
#define INVERTED_UNKNOWN 2u

int esm_cache_is_cache(const char *path)
{
    char magic[8];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, CACHE_MAGIC, 8) == 0;
    fclose(f);
    return ok;
}

/* The header (everything before the pixels) is built in memory: the streaming writer writes it
 * twice, once with placeholder statistics and once, over the first, with the real ones. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} hbuf;

static void put(hbuf *h, const void *src, size_t len)
{
    if (h->oom)
        return;
    if (h->n + len > h->cap) {
        size_t cap = 2 * (h->n + len) + 256;
        unsigned char *q = realloc(h->p, cap);
        if (!q) {
            h->oom = 1;
            return;
        }
        h->p = q, h->cap = cap;
    }
    memcpy(h->p + h->n, src, len);
    h->n += len;
}

static void put_u16(hbuf *h, uint16_t v) { unsigned char b[2]; esm_put_u16(b, v); put(h, b, 2); }
static void put_u32(hbuf *h, uint32_t v) { unsigned char b[4]; esm_put_u32(b, v); put(h, b, 4); }
static void put_u64(hbuf *h, uint64_t v) { unsigned char b[8]; esm_put_u64(b, v); put(h, b, 8); }

static void put_f32(hbuf *h, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(h, u);
}

static float get_f32(esm_reader *r)
{
    uint32_t u = esm_get_u32(r);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

static void put_name(hbuf *h, const char *s)
{
    size_t n = strlen(s);
    put_u16(h, (uint16_t)n);
    put(h, s, n);
}

static esm_status build_header(const esm_dataset *ds, hbuf *h, esm_err *err)
{
    for (int i = 0; i < ds->n_chars; i++)
        if (strlen(ds->names[i]) > UINT16_MAX)
            return esm_fail(err, ESM_EINVAL, "character name too long for the cache: %.40s...", ds->names[i]);
    put(h, CACHE_MAGIC, 8);
    put_u32(h, CACHE_VERSION);
    put_u32(h, (uint32_t)ds->channels);
    put_u32(h, (uint32_t)ds->height);
    put_u32(h, (uint32_t)ds->width);
    put_u32(h, (uint32_t)ds->n_chars);
    put_u64(h, ds->n_total);
    put_u32(h, (uint32_t)ds->n_splits);
    put_u32(h, (uint32_t)ds->normalize);
    for (int c = 0; c < ds->channels; c++) {
        put_f32(h, ds->mean[c]);
        put_f32(h, ds->std[c]);
    }
    put_u32(h, ds->inverted < 0 ? INVERTED_UNKNOWN : (uint32_t)(ds->inverted != 0));
    for (int i = 0; i < ds->n_chars; i++) {
        put_u32(h, (uint32_t)ds->n_images[i]);
        put(h, &ds->background[i], 1);
        put_name(h, ds->names[i]);
    }
    for (int i = 0; i < ds->n_splits; i++) {
        put_name(h, ds->split_names[i]);
        size_t n = strlen(ds->split_texts[i]);
        put_u32(h, (uint32_t)n);
        put(h, ds->split_texts[i], n);
    }
    return h->oom ? esm_fail(err, ESM_ENOMEM, "out of memory writing the cache header") : ESM_OK;
}

static void write_crc(esm_afile *af, uint32_t crc)
{
    unsigned char b[4];
    esm_put_u32(b, crc);
    esm_afile_write(af, b, 4);
}

esm_status esm_cache_write(const esm_dataset *ds, const char *path, esm_err *err)
{
    hbuf h = {0};
    esm_status st = build_header(ds, &h, err);
    esm_afile af;
    if (st == ESM_OK)
        st = esm_afile_open(&af, path, err);
    if (st != ESM_OK) {
        free(h.p);
        return st;
    }
    esm_afile_write(&af, h.p, h.n);
    free(h.p);
    esm_afile_write(&af, ds->pixels, ds->n_total * (size_t)ds->channels * ds->height * ds->width);
    write_crc(&af, af.crc);
    return esm_afile_commit(&af, err);
}

esm_status esm_cache_write_decoded(esm_dataset *ds, esm_decode_fn decode, const void *ctx, int threads,
                                   size_t batch_bytes, esm_progress_fn progress, void *progress_user,
                                   const char *path, esm_err *err)
{
    size_t img = (size_t)ds->channels * ds->height * ds->width, n = ds->n_total;
    size_t batch = (batch_bytes ? batch_bytes : ESM_STREAM_BATCH_BYTES) / img;
    batch = batch < 1 ? 1 : batch < n ? batch : n;
    hbuf h = {0};
    esm_status st = build_header(ds, &h, err); /* placeholder statistics: the sizes are final */
    uint8_t *buf = st == ESM_OK ? malloc(batch * img + 1) : NULL;
    if (st == ESM_OK && !buf)
        st = esm_fail(err, ESM_ENOMEM, "out of memory for a batch of %zu images", batch);
    esm_afile af;
    if (st == ESM_OK)
        st = esm_afile_open(&af, path, err);
    if (st != ESM_OK) {
        free(h.p), free(buf);
        return st;
    }
    size_t header_len = h.n;
    esm_afile_write(&af, h.p, h.n);
    af.crc = 0; /* from here: the CRC of the pixels alone, combined with the final header's at the end */
    esm_channel_acc acc = {0};
    for (size_t base = 0; base < n && st == ESM_OK; base += batch) {
        size_t count = base + batch < n ? batch : n - base;
        st = esm_decode_batch(decode, ctx, base, count, buf, img, threads, err);
        if (st != ESM_OK)
            break;
        esm_channel_acc_add(&acc, buf, count, ds->channels, (size_t)ds->height * ds->width);
        esm_afile_write(&af, buf, count * img);
        if (progress)
            progress(progress_user, "decoding images", base + count, n);
    }
    free(buf);
    if (st == ESM_OK) {
        esm_channel_acc_finish(&acc, ds);
        h.n = 0;
        st = build_header(ds, &h, err);
    }
    if (st == ESM_OK && h.n != header_len) /* cannot happen: only fixed-size fields changed */
        st = esm_fail(err, ESM_EINVAL, "%s: cache header changed size while writing", path);
    if (st != ESM_OK) {
        free(h.p);
        esm_afile_abort(&af);
        return st;
    }
    esm_afile_rewrite(&af, 0, h.p, h.n);
    uint32_t crc = esm_crc32_combine(esm_crc32(0, h.p, h.n), af.crc, (uint64_t)n * img);
    free(h.p);
    write_crc(&af, crc);
    return esm_afile_commit(&af, err);
}

static char *take_string(esm_reader *r, size_t n)
{
    const unsigned char *p = esm_take(r, n);
    return p ? strndup((const char *)p, n) : NULL;
}

static esm_status parse_names(esm_reader *r, esm_dataset *ds, uint32_t n_splits, const char *path, esm_err *err)
{
    size_t img = 0;
    for (int i = 0; i < ds->n_chars; i++) {
        ds->n_images[i] = (int)esm_get_u32(r);
        const unsigned char *bg = esm_take(r, 1);
        ds->background[i] = bg ? *bg : 0;
        ds->names[i] = take_string(r, esm_get_u16(r));
        ds->first[i] = img;
        img += (size_t)ds->n_images[i];
        if (!r->ok || !ds->names[i])
            return esm_fail(err, ESM_EFORMAT, "cache file %s is truncated; run 'esmeta prepare' again", path);
    }
    if (img != ds->n_total)
        return esm_fail(err, ESM_EFORMAT, "cache file %s is inconsistent (image counts); run 'esmeta prepare' again",
                        path);
    for (uint32_t i = 0; i < n_splits; i++) {
        char *name = take_string(r, esm_get_u16(r));
        char *text = take_string(r, esm_get_u32(r));
        esm_status st = ESM_OK;
        if (!r->ok || !name || !text) {
            free(text);
            st = esm_fail(err, ESM_EFORMAT, "cache file %s is truncated; run 'esmeta prepare' again", path);
        } else {
            st = esm_dataset_add_split(ds, name, text, err);
        }
        free(name);
        if (st != ESM_OK)
            return st;
    }
    return ESM_OK;
}

static esm_status parse_cache(const unsigned char *buf, size_t len, const char *path, esm_dataset **out,
                              esm_err *err)
{
    esm_reader r = {.buf = buf, .len = len, .ok = 1};
    const unsigned char *magic = esm_take(&r, 8);
    if (!magic || memcmp(magic, CACHE_MAGIC, 8) != 0)
        return esm_fail(err, ESM_EFORMAT, "%s: not an esmeta cache file", path);
    uint32_t version = esm_get_u32(&r);
    if (r.ok && (version < CACHE_OLDEST || version > CACHE_VERSION))
        return esm_fail(err, ESM_EVERSION, "cache file %s has format version %u, this esmeta reads versions %u to %u; "
                        "run 'esmeta prepare' again", path, version, CACHE_OLDEST, CACHE_VERSION);
    uint32_t c = esm_get_u32(&r), h = esm_get_u32(&r), w = esm_get_u32(&r), n_chars = esm_get_u32(&r);
    uint64_t n_total = esm_get_u64(&r);
    uint32_t n_splits = esm_get_u32(&r);
    uint32_t normalize = version >= 2 ? esm_get_u32(&r) : 0;
    float stats[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    for (uint32_t k = 0; version >= 2 && k < 2 * c && k < 8; k++)
        stats[k] = get_f32(&r);
    uint32_t inverted = version >= 3 ? esm_get_u32(&r) : INVERTED_UNKNOWN;
    if (!r.ok)
        return esm_fail(err, ESM_EFORMAT, "cache file %s is truncated; run 'esmeta prepare' again", path);
    if (c == 0 || h == 0 || w == 0 || c > 4 || h > 4096 || w > 4096 || n_splits > 64 || normalize > 1 ||
        inverted > INVERTED_UNKNOWN)
        return esm_fail(err, ESM_EFORMAT, "cache file %s is corrupt (implausible header); run 'esmeta prepare' again",
                        path);
    size_t img = (size_t)c * h * w;
    if (n_chars > len || n_total > len / img)
        return esm_fail(err, ESM_EFORMAT, "cache file %s is truncated (%zu bytes cannot hold %llu images); run "
                        "'esmeta prepare' again", path, len, (unsigned long long)n_total);
    esm_dataset *ds;
    /* no pixel buffer: they stay in the mapping */
    esm_status st = esm_dataset_alloc((int)n_chars, 0, (int)c, (int)h, (int)w, &ds, err);
    if (st != ESM_OK)
        return st;
    ds->n_total = n_total;
    ds->normalize = (int)normalize;
    ds->inverted = inverted == INVERTED_UNKNOWN ? -1 : (int)inverted;
    for (uint32_t k = 0; k < c; k++) {
        ds->mean[k] = stats[2 * k];
        ds->std[k] = stats[2 * k + 1];
        if (normalize && !(ds->std[k] > 0))
            st = esm_fail(err, ESM_EFORMAT, "cache file %s is corrupt (channel std %g); run 'esmeta prepare' again",
                          path, ds->std[k]);
    }
    if (st == ESM_OK)
        st = parse_names(&r, ds, n_splits, path, err);
    if (st == ESM_OK) {
        const unsigned char *px = esm_take(&r, n_total * img);
        uint32_t stored = esm_get_u32(&r);
        if (!r.ok)
            st = esm_fail(err, ESM_EFORMAT, "cache file %s is truncated; run 'esmeta prepare' again", path);
        else if (r.pos != len)
            st = esm_fail(err, ESM_EFORMAT, "cache file %s has %zu unexpected trailing bytes; run 'esmeta prepare' "
                          "again", path, len - r.pos);
        else if (esm_crc32(0, buf, len - 4) != stored)
            st = esm_fail(err, ESM_ECHECKSUM, "cache file %s fails its checksum (corrupt); run 'esmeta prepare' "
                          "again", path);
        else {
            free(ds->pixels);
            ds->pixels = (uint8_t *)px;
        }
    }
    if (st != ESM_OK) {
        esm_dataset_free(ds);
        return st;
    }
    *out = ds;
    return ESM_OK;
}

esm_status esm_cache_read(const char *path, esm_dataset **out, esm_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return esm_fail(err, errno == ENOENT ? ESM_ENOTFOUND : ESM_EIO, "cannot open cache file %s (%s)", path,
                        strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 1) {
        close(fd);
        return esm_fail(err, ESM_EFORMAT, "cache file %s is empty or unreadable; run 'esmeta prepare' again", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return esm_fail(err, ESM_EIO, "cannot map cache file %s (%s)", path, strerror(errno));
    posix_madvise(map, len, POSIX_MADV_SEQUENTIAL); /* the checksum reads it once, front to back */
    esm_status st = parse_cache(map, len, path, out, err);
    if (st != ESM_OK) {
        munmap(map, len);
        return st;
    }
    posix_madvise(map, len, POSIX_MADV_RANDOM); /* episodes then touch images anywhere */
    (*out)->mapping = map;
    (*out)->mapping_len = len;
    return ESM_OK;
}
