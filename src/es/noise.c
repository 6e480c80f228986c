/* Member noise, regenerated on demand from the counter-based RNG keyed by
 * (seed, generation, pair); never stored as a population x dimension matrix. */
#include "core/simd.h"
#include "es/strategy.h"

#include <assert.h>

void esm_es_noise_range(uint64_t seed, uint32_t gen, int member, int antithetic, size_t begin,
                        size_t n, float *out)
{
    assert(member >= 0);
    uint32_t pair = antithetic ? (uint32_t)member / 2 : (uint32_t)member;
    esm_gauss_range(seed, gen, pair, begin, out, n);
    if (antithetic && (member & 1))
        for (size_t j = 0; j < n; j++)
            out[j] = -out[j];
}

ESM_HOT static void add_member(double *s1, double *s2, const float *z, float a, float b, size_t n)
{
    if (a != 0.0f)
        for (size_t j = 0; j < n; j++)
            s1[j] += (double)a * z[j];
    if (b != 0.0f)
        for (size_t j = 0; j < n; j++)
            s2[j] += (double)b * z[j] * z[j];
}

void esm_es_accumulate(const esm_es *es, const float *a, const float *b, size_t begin, size_t n,
                       double *s1, double *s2)
{
    assert(n <= ESM_ES_CHUNK);
    const esm_es_config *c = &es->cfg;
    float z[ESM_ES_CHUNK], mz[ESM_ES_CHUNK];
    for (size_t j = 0; j < n; j++)
        s1[j] = 0;
    for (size_t j = 0; s2 && j < n; j++)
        s2[j] = 0;
    int step = c->antithetic ? 2 : 1;
    for (int i = 0; i < c->popsize; i += step) {
        float a0 = a ? a[i] : 0, b0 = b ? b[i] : 0;
        float a1 = a && step == 2 ? a[i + 1] : 0, b1 = b && step == 2 ? b[i + 1] : 0;
        if (a0 == 0 && b0 == 0 && a1 == 0 && b1 == 0)
            continue;
        /* One draw per pair; the mirrored member reuses it, still summed in member order. */
        esm_gauss_range(c->seed, es->gen, (uint32_t)(i / step), begin, z, n);
        add_member(s1, s2, z, a0, b0, n);
        if (step == 2) {
            for (size_t j = 0; j < n; j++)
                mz[j] = -z[j];
            add_member(s1, s2, mz, a1, b1, n);
        }
    }
}
