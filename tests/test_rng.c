/* Philox known answers (Random123's kat_vectors) and sampler statistics. */
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

static void check_kat(esm_tctx *t_, esm_ctr4 c, esm_key2 k, const uint32_t want[4])
{
    esm_ctr4 got = esm_philox4x32(c, k);
    for (int i = 0; i < 4; i++)
        CHECKF(got.v[i] == want[i], "word %d: got %08x want %08x", i, got.v[i], want[i]);
}

TEST(philox_known_answers)
{
    esm_ctr4 c0 = {{0, 0, 0, 0}};
    esm_key2 k0 = {{0, 0}};
    check_kat(t_, c0, k0, (const uint32_t[]){0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    esm_ctr4 c1 = {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}};
    esm_key2 k1 = {{0xffffffff, 0xffffffff}};
    check_kat(t_, c1, k1, (const uint32_t[]){0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    esm_ctr4 c2 = {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}};
    esm_key2 k2 = {{0xa4093822, 0x299f31d0}};
    check_kat(t_, c2, k2, (const uint32_t[]){0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST(gauss_moments)
{
    /* 2^20 draws: the standard error of the mean is 1e-3, of the variance about 1.4e-3. */
    size_t n = 1u << 20;
    float *x = malloc(n * sizeof *x);
    REQUIRE(x);
    esm_gauss_fill(42, 7, 0, x, n);
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    size_t within1 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        m1 += v, m2 += v * v, m3 += v * v * v, m4 += v * v * v * v;
        within1 += fabs(v) < 1.0;
    }
    m1 /= n, m2 /= n, m3 /= n, m4 /= n;
    CHECK_NEAR(m1, 0.0, 5e-3);
    CHECK_NEAR(m2, 1.0, 7e-3);
    CHECK_NEAR(m3, 0.0, 2e-2);
    CHECK_NEAR(m4, 3.0, 4e-2);
    CHECK_NEAR((double)within1 / n, 0.682689, 3e-3);
    free(x);
}

TEST(gauss_range_matches_fill)
{
    /* Any sub-range regenerates exactly the same numbers: what lets workers rebuild noise. */
    float all[103], part[50];
    esm_gauss_fill(9, 1, 2, all, 103);
    esm_gauss_range(9, 1, 2, 37, part, 50);
    CHECK(memcmp(all + 37, part, sizeof part) == 0);
    float other[103];
    esm_gauss_fill(9, 1, 3, other, 103);
    CHECK(memcmp(all, other, sizeof all) != 0);
}

TEST(stream_below_uniform)
{
    /* Chi-square over 10 bins of 100000 draws; 9 dof, p = 0.001 critical value 27.9. */
    esm_stream s = esm_stream_make(123, 0, 0, 0);
    int bins[10] = {0};
    int n = 100000;
    for (int i = 0; i < n; i++) {
        uint32_t v = esm_stream_below(&s, 10);
        REQUIRE(v < 10);
        bins[v]++;
    }
    double chi2 = 0, e = n / 10.0;
    for (int i = 0; i < 10; i++)
        chi2 += (bins[i] - e) * (bins[i] - e) / e;
    CHECKF(chi2 < 27.9, "chi2 = %.2f", chi2);
}

TEST(stream_is_pure_function_of_ids)
{
    esm_stream a = esm_stream_make(5, 1, 2, 3), b = esm_stream_make(5, 1, 2, 3), c = esm_stream_make(5, 1, 2, 4);
    int same = 1, differ = 0;
    for (int i = 0; i < 20; i++) {
        uint32_t x = esm_stream_u32(&a), y = esm_stream_u32(&b), z = esm_stream_u32(&c);
        same &= x == y;
        differ |= x != z;
    }
    CHECK(same);
    CHECK(differ);
}
