/* Little-endian encoding for esmeta's binary files, independent of the host's byte order,
 * and a bounds-checked reader so that truncated or corrupt files fail cleanly. */
#ifndef ESM_CORE_BYTES_H
#define ESM_CORE_BYTES_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Headers and counts go through the helpers below, but float arrays (parameters, optimiser and ES
 * state) are written as they lie in memory, so the formats are little-endian only if the host is.
 * Refusing to build elsewhere beats writing files that other machines would misread. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "esmeta's binary files assume a little-endian host");

static inline void esm_put_u16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static inline void esm_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void esm_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Reads advance pos; once a read runs past the end, ok turns 0 and every later read
 * returns zeros, so callers check ok once after a group of reads. */
typedef struct {
    const unsigned char *buf;
    size_t len, pos;
    int ok;
} esm_reader;

static inline const unsigned char *esm_take(esm_reader *r, size_t n)
{
    if (!r->ok || n > r->len - r->pos) {
        r->ok = 0;
        return NULL;
    }
    const unsigned char *p = r->buf + r->pos;
    r->pos += n;
    return p;
}
static inline uint16_t esm_get_u16(esm_reader *r)
{
    const unsigned char *p = esm_take(r, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}
static inline uint32_t esm_get_u32(esm_reader *r)
{
    const unsigned char *p = esm_take(r, 4);
    uint32_t v = 0;
    for (int i = 0; p && i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static inline uint64_t esm_get_u64(esm_reader *r)
{
    const unsigned char *p = esm_take(r, 8);
    uint64_t v = 0;
    for (int i = 0; p && i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}
/* n raw bytes (zeros once the reader has run out). */
static inline void esm_get_bytes(esm_reader *r, void *dst, size_t n)
{
    const unsigned char *p = esm_take(r, n);
    if (p)
        memcpy(dst, p, n);
    else
        memset(dst, 0, n);
}
static inline void esm_get_floats(esm_reader *r, float *x, size_t n) { esm_get_bytes(r, x, n * sizeof *x); }

/* A writer into a buffer whose size was computed first: running past cap is a programmer
 * error (assert), never a file's fault. */
typedef struct {
    unsigned char *buf;
    size_t len, cap;
} esm_writer;

static inline unsigned char *esm_grow(esm_writer *w, size_t n)
{
    assert(n <= w->cap - w->len);
    unsigned char *p = w->buf + w->len;
    w->len += n;
    return p;
}
static inline void esm_write_bytes(esm_writer *w, const void *src, size_t n) { memcpy(esm_grow(w, n), src, n); }
static inline void esm_write_u32(esm_writer *w, uint32_t v) { esm_put_u32(esm_grow(w, 4), v); }
static inline void esm_write_u64(esm_writer *w, uint64_t v) { esm_put_u64(esm_grow(w, 8), v); }
static inline void esm_write_floats(esm_writer *w, const float *x, size_t n) { esm_write_bytes(w, x, n * sizeof *x); }

#endif
