/* The checkpoint container (see ckpt_file.h). */
#include "train/ckpt_file.h"

#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/bytes.h"
#include "core/read_file.h"

#define CKPT_MAGIC "ESMCKPT"
#define CKPT_VERSION 1u

esm_status esm_ckpt_write(const char *path, const esm_ckpt_section *s, int n, esm_err *err)
{
    esm_afile af;
    esm_status st = esm_afile_open(&af, path, err);
    if (st != ESM_OK)
        return st;
    unsigned char hdr[16];
    memcpy(hdr, CKPT_MAGIC, 8); /* includes the terminating zero */
    esm_put_u32(hdr + 8, CKPT_VERSION);
    esm_put_u32(hdr + 12, (uint32_t)n);
    esm_afile_write(&af, hdr, sizeof hdr);
    for (int i = 0; i < n; i++) {
        unsigned char sh[ESM_CKPT_TAG_LEN + 8] = {0};
        strncpy((char *)sh, s[i].tag, ESM_CKPT_TAG_LEN);
        esm_put_u64(sh + ESM_CKPT_TAG_LEN, s[i].len);
        esm_afile_write(&af, sh, sizeof sh);
        esm_afile_write(&af, s[i].data, s[i].len);
    }
    unsigned char crc[4];
    esm_put_u32(crc, af.crc);
    esm_afile_write(&af, crc, 4);
    return esm_afile_commit(&af, err);
}

static esm_status parse(esm_ckpt *c, esm_err *err)
{
    esm_reader r = {.buf = c->buf, .len = c->len, .ok = 1};
    const unsigned char *magic = esm_take(&r, 8);
    if (!magic || memcmp(magic, CKPT_MAGIC, 8) != 0)
        return esm_fail(err, ESM_EFORMAT, "%s: not an esmeta checkpoint", c->path);
    uint32_t version = esm_get_u32(&r);
    if (r.ok && version != CKPT_VERSION)
        return esm_fail(err, ESM_EVERSION, "checkpoint %s has format version %u, this esmeta reads version %u",
                        c->path, version, CKPT_VERSION);
    uint32_t n = esm_get_u32(&r);
    if (!r.ok || n > 4096)
        return esm_fail(err, ESM_EFORMAT, "checkpoint %s is truncated or corrupt (header)", c->path);
    c->sections = calloc(n + 1, sizeof *c->sections);
    if (!c->sections)
        return esm_fail(err, ESM_ENOMEM, "out of memory reading %s", c->path);
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *tag = esm_take(&r, ESM_CKPT_TAG_LEN);
        uint64_t len = esm_get_u64(&r);
        const unsigned char *data = r.ok && len <= r.len - r.pos ? esm_take(&r, (size_t)len) : NULL;
        if (!tag || !data)
            return esm_fail(err, ESM_EFORMAT, "checkpoint %s is truncated (section %u of %u)", c->path, i + 1, n);
        memcpy(c->sections[i].tag, tag, ESM_CKPT_TAG_LEN);
        c->sections[i].data = data;
        c->sections[i].len = (size_t)len;
        c->n = (int)i + 1;
    }
    uint32_t stored = esm_get_u32(&r);
    if (!r.ok)
        return esm_fail(err, ESM_EFORMAT, "checkpoint %s is truncated (no checksum)", c->path);
    if (r.pos != c->len)
        return esm_fail(err, ESM_EFORMAT, "checkpoint %s has %zu unexpected trailing bytes", c->path, c->len - r.pos);
    if (esm_crc32(0, c->buf, c->len - 4) != stored)
        return esm_fail(err, ESM_ECHECKSUM, "checkpoint %s fails its checksum: the file is corrupt", c->path);
    return ESM_OK;
}

esm_status esm_ckpt_read(const char *path, esm_ckpt *c, esm_err *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    esm_status st = esm_read_file(path, "checkpoint", &c->buf, &c->len, err);
    if (st == ESM_OK)
        st = parse(c, err);
    if (st != ESM_OK)
        esm_ckpt_free(c);
    return st;
}

void esm_ckpt_free(esm_ckpt *c)
{
    free(c->buf);
    free(c->sections);
    c->buf = NULL;
    c->sections = NULL;
    c->n = 0;
}

esm_status esm_ckpt_get(const esm_ckpt *c, const char *tag, size_t want_len, const void **data, size_t *len,
                        esm_err *err)
{
    for (int i = 0; i < c->n; i++) {
        if (strncmp(c->sections[i].tag, tag, ESM_CKPT_TAG_LEN) != 0)
            continue;
        if (want_len > 0 && c->sections[i].len != want_len)
            return esm_fail(err, ESM_EMISMATCH, "checkpoint %s: section '%s' holds %zu bytes, expected %zu; was it "
                            "saved with another model shape?", c->path, tag, c->sections[i].len, want_len);
        *data = c->sections[i].data;
        if (len)
            *len = c->sections[i].len;
        return ESM_OK;
    }
    return esm_fail(err, ESM_ENOTFOUND, "checkpoint %s has no '%s' section; was it written by another trainer?",
                    c->path, tag);
}
