/* Philox4x32-10 and the samplers built on it. Constants are those of the Random123
 * paper (Salmon, Moraes, Dror, Shaw, SC'11); known-answer tests live in tests/test_rng.c. */
#include "esmeta/core.h"

#include <assert.h>
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Counter word 2 value reserved for esm_gauss_fill, so streams never collide with it. */
#define GAUSS_FILL_TAG 0xFFFFFFFFu

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

esm_ctr4 esm_philox4x32(esm_ctr4 c, esm_key2 k)
{
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c.v[0], &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c.v[2], &hi1);
        esm_ctr4 n = {{hi1 ^ c.v[1] ^ k.v[0], lo1, hi0 ^ c.v[3] ^ k.v[1], lo0}};
        c = n;
        k.v[0] += PHILOX_W0;
        k.v[1] += PHILOX_W1;
    }
    return c;
}

float esm_u32_to_open01(uint32_t x)
{
    /* 24 bits fill a float mantissa exactly; the half-step offset keeps 0 and 1 out. */
    return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

static inline void box_muller(uint32_t a, uint32_t b, float *z0, float *z1)
{
    const float two_pi = 6.28318530717958647692f;
    float r = sqrtf(-2.0f * logf(esm_u32_to_open01(a)));
    float t = two_pi * esm_u32_to_open01(b);
    *z0 = r * cosf(t);
    *z1 = r * sinf(t);
}

void esm_gauss4(esm_ctr4 ctr, esm_key2 key, float out[4])
{
    esm_ctr4 x = esm_philox4x32(ctr, key);
    box_muller(x.v[0], x.v[1], &out[0], &out[1]);
    box_muller(x.v[2], x.v[3], &out[2], &out[3]);
}

static esm_key2 key_from_seed(uint64_t seed)
{
    esm_key2 k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    return k;
}

esm_stream esm_stream_make(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2)
{
    assert(c2 != GAUSS_FILL_TAG);
    esm_stream s = {.key = key_from_seed(seed), .ctr = {{0, c0, c1, c2}}, .used = 4};
    return s;
}

uint32_t esm_stream_u32(esm_stream *s)
{
    if (s->used == 4) {
        esm_ctr4 x = esm_philox4x32(s->ctr, s->key);
        for (int i = 0; i < 4; i++)
            s->buf[i] = x.v[i];
        s->ctr.v[0]++;
        s->used = 0;
    }
    return s->buf[s->used++];
}

uint32_t esm_stream_below(esm_stream *s, uint32_t n)
{
    assert(n > 0);
    uint64_t m = (uint64_t)esm_stream_u32(s) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)esm_stream_u32(s) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float esm_stream_uniform(esm_stream *s)
{
    return esm_u32_to_open01(esm_stream_u32(s));
}

float esm_stream_gauss(esm_stream *s)
{
    /* Uses one pair per draw and drops the sine half: simpler than caching, and streams
     * are for low-volume sampling; bulk noise goes through esm_gauss_range. */
    uint32_t a = esm_stream_u32(s), b = esm_stream_u32(s);
    float z0, z1;
    box_muller(a, b, &z0, &z1);
    return z0;
}

void esm_gauss_range(uint64_t seed, uint32_t c0, uint32_t c1, size_t begin, float *out, size_t n)
{
    esm_key2 key = key_from_seed(seed);
    size_t j = begin, end = begin + n;
    while (j < end) {
        size_t block = j / 4;
        esm_ctr4 ctr = {{(uint32_t)block, c0, c1, GAUSS_FILL_TAG}};
        float g[4];
        esm_gauss4(ctr, key, g);
        for (size_t q = j % 4; q < 4 && j < end; q++, j++)
            out[j - begin] = g[q];
    }
    assert(end / 4 <= UINT32_MAX);
}

void esm_gauss_fill(uint64_t seed, uint32_t c0, uint32_t c1, float *out, size_t n)
{
    esm_gauss_range(seed, c0, c1, 0, out, n);
}
