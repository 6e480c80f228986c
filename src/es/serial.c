/* Bounded byte writer/reader for checkpoints. Sizes are computed before writing and
 * checked before reading, so overruns here are programmer errors (asserts). */
#include "es/strategy.h"

#include <assert.h>
#include <string.h>

void esm_put(esm_wbuf *w, const void *src, size_t n)
{
    assert(n <= w->cap - w->len);
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

void esm_put_u32(esm_wbuf *w, uint32_t x) { esm_put(w, &x, sizeof x); }
void esm_put_u64(esm_wbuf *w, uint64_t x) { esm_put(w, &x, sizeof x); }
void esm_put_f32(esm_wbuf *w, float x) { esm_put(w, &x, sizeof x); }
void esm_put_floats(esm_wbuf *w, const float *x, size_t n) { esm_put(w, x, n * sizeof *x); }

void esm_get(esm_rbuf *r, void *dst, size_t n)
{
    assert(n <= r->len - r->pos);
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
}

uint32_t esm_get_u32(esm_rbuf *r)
{
    uint32_t x;
    esm_get(r, &x, sizeof x);
    return x;
}

uint64_t esm_get_u64(esm_rbuf *r)
{
    uint64_t x;
    esm_get(r, &x, sizeof x);
    return x;
}

float esm_get_f32(esm_rbuf *r)
{
    float x;
    esm_get(r, &x, sizeof x);
    return x;
}

void esm_get_floats(esm_rbuf *r, float *x, size_t n) { esm_get(r, x, n * sizeof *x); }
