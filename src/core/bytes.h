/* Little-endian encoding for esmeta's binary files, independent of the host's byte order,
 * and a bounds-checked reader so that truncated or corrupt files fail cleanly. */
#ifndef ESM_CORE_BYTES_H
#define ESM_CORE_BYTES_H

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

#endif
