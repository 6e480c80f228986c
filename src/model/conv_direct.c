/* 3x3 convolution forward, stride 1, zero padding 1, computed directly (no im2col, no BLAS).
 *
 * The input of one image is copied into padded planes (esm_conv3x3_planes): for each input
 * channel, a zero row, the channel's h rows of w floats, a zero row. Tap (ci, ky, kx) of output
 * pixel p = y*w + x is then plane ci at p + ky*w + kx - 1, so a run of consecutive output pixels
 * reads a contiguous run of each plane, even across image rows; the kx = 0 and 2 taps that such a
 * run reads across a row's end are masked to 0 (the zero padding's value). The micro-kernel
 * (conv_direct_tile.h) keeps a tile of channels x pixel vectors in registers. Small images are
 * stacked (stacked_images).
 *
 * Variants: AVX-512 and AVX2 with FMA, chosen at run time like the ESM_HOT clones, and a portable
 * one (multiply, then add). FMA rounds once where the portable variant rounds twice: like the BLAS
 * kernel, the variant is fixed by the machine, and the bits are the same for any thread count,
 * batch split or rank count on it (every output is one fixed chain, conv_direct_tile.h). */
#include "core/simd.h"
#include "ws.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Floats before the first image's planes (the first pixel's kx = 0 tap reads one float before its
 * plane, masked) and after the last one (a vector may read past it when an image has fewer pixels
 * than one vector; its lanes past h*w are never stored). */
#define CD_SLACK ESM_CONV_SLACK
/* Output channels are padded to a multiple of this in the packed weights (every variant's tile
 * height divides it). */
#define CD_CPAD 8

struct cd_image {
    const float *planes; /* (cin, rows, w): the padded planes of one image (rows = h+2) or of a
                          * stack of g images (rows = g*(h+1) + 1, stacked_images) */
    const float *wt;     /* (cp/CD_CPAD, cin*9, CD_CPAD): weights packed by blocks of channels,
                          * tap-major inside a block, channels padded with zeros */
    const float *bias;   /* (cout) or NULL */
    float *out;          /* (cout, hw) */
    const int *off;      /* (cin*3): tap (ci, ky, kx) of pixel p is planes[off[ci*3 + ky] + kx + p] */
    int k, cout, cp, hw; /* hw: the pixels (flat positions) computed per channel */
    int w;
};

size_t esm_conv3x3_plane_floats(int cin, int h, int w)
{
    return (size_t)cin * (h + 2) * w;
}

/* Small images (7x7, 3x3) fill vectors badly one by one (49 pixels take 4 vectors of 16, 9 take
 * one): g of them are stacked in one set of planes, sharing the zero row between two images, and
 * convolved as one image of g*(h+1) - 1 rows whose rows h, 2h+1, ... (they straddle two images) are
 * computed but never stored; the rest lands in a staging buffer and is copied out. Each output
 * still reads its own taps in the same order: the bits are those of one image at a time. Stacking
 * pays when (h+1)*w pixels take fewer lanes than one image rounded up to 16-float vectors. */
#define CD_STACK_PIXELS 512

static int stacked_images(int h, int w)
{
    int hw = h * w, lanes = (hw + 15) / 16 * 16;
    if ((h + 1) * w >= lanes)
        return 1;
    int g = CD_STACK_PIXELS / ((h + 1) * w);
    return g > 1 ? g : 1;
}

/* rows of planes for g stacked images */
static size_t stack_rows(int g, int h)
{
    return (size_t)g * (h + 1) + 1;
}

size_t esm_conv3x3_direct_scratch(int cin, int cout, int h, int w)
{
    size_t cp = ((size_t)cout + CD_CPAD - 1) / CD_CPAD * CD_CPAD;
    int g = stacked_images(h, w);
    size_t planes = (size_t)cin * stack_rows(g, h) * w, staging = g > 1 ? (size_t)cout * g * (h + 1) * w : 0;
    /* the planes between their slacks, the packed weights, the tap offsets (as many ints as
     * floats), the staging */
    return CD_SLACK + planes + CD_SLACK + cp * 9 * cin + 3 * (size_t)cin + staging;
}

/* Moves of n floats in blocks of 16 (the last one overlapping, ESM_OVERLAPPED) and, below 16, 4:
 * planes are short (9 to 784 floats), and a libc call per plane cost more than the copy. */
ESM_INLINE void copy_floats(float *restrict d, const float *restrict s, int n)
{
#define COPY16(at, len) memcpy(d + (at), s + (at), 16 * sizeof *d)
#define COPY4(at, len) memcpy(d + (at), s + (at), 4 * sizeof *d)
    if (n >= 16)
        ESM_OVERLAPPED(16, n, COPY16);
    else if (n >= 4)
        ESM_OVERLAPPED(4, n, COPY4);
    else
        for (int i = 0; i < n; i++)
            d[i] = s[i];
#undef COPY16
#undef COPY4
}

ESM_INLINE void zero_floats(float *d, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = 0.0f;
}

#if defined(__GNUC__) && !defined(__clang__)
/* GCC would turn the short loops back into memcpy/memset calls */
#define NO_LIBC_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_LIBC_LOOPS
#endif

/* The padded planes of g images inp (g, cin, h, w) stacked (g = 1: esm_conv3x3_planes' layout):
 * plane ci is a zero row, then each image's rows of channel ci followed by a zero row. */
ESM_HOT NO_LIBC_LOOPS static void planes_stack(const float *restrict inp, int g, int cin, int h, int w,
                                               float *restrict planes)
{
    int hw = h * w;
    size_t plane = stack_rows(g, h) * w;
    for (int ci = 0; ci < cin; ci++) {
        float *pl = planes + (size_t)ci * plane;
        zero_floats(pl, w);
        for (int i = 0; i < g; i++) {
            float *d = pl + (size_t)(i * (h + 1) + 1) * w;
            copy_floats(d, inp + ((size_t)i * cin + ci) * hw, hw);
            zero_floats(d + hw, w);
        }
    }
}

/* Which lanes of the n/v vectors from flat position s0 have a left (bits0) and a right (bits2)
 * neighbour in their row of w: the kx = 0 and kx = 2 taps of the others are the padding. Lane l
 * is at column (x0 + l) mod w: the first lane of a vector in column 0 is (w - x0) mod w, then
 * every w lanes. */
ESM_INLINE void edge_bits(int s0, int n, int w, int v, uint16_t *bits0, uint16_t *bits2)
{
    int x0 = s0 % w;
    for (int j = 0; j < n / v; j++) {
        unsigned b0 = 0, b2 = 0;
        for (int l = (w - x0) % w; l < v; l += w)
            b0 |= 1u << l;
        for (int l = (2 * w - 1 - x0) % w; l < v; l += w)
            b2 |= 1u << l;
        bits0[j] = (uint16_t)~b0;
        bits2[j] = (uint16_t)~b2;
        for (x0 += v; x0 >= w; x0 -= w)
            ;
    }
}

void esm_conv3x3_planes(const float *inp, int cin, int h, int w, float *planes)
{
    planes_stack(inp, 1, cin, h, w, planes);
}

void esm_conv3x3_planes_slack(float *end)
{
    memset(end, 0, CD_SLACK * sizeof *end);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(ESM_NO_CLONES)
#define CD_X86 1
#include <immintrin.h>

#define CD_ATTR __attribute__((target("arch=x86-64-v4")))
#define CD_NAME(f) f##_avx512
#define CD_VEC __m512
#define CD_V 16
#define CD_MR 8
#define CD_NR 3
#define CD_ZERO() _mm512_setzero_ps()
#define CD_LOAD(p) _mm512_loadu_ps(p)
#define CD_MASK __mmask16
#define CD_MASK_FROM_BITS(b) ((__mmask16)(b))
#define CD_LOAD_MASK(p, m) _mm512_maskz_loadu_ps(m, p)
#define CD_SET1(x) _mm512_set1_ps(x)
#define CD_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define CD_ADD(a, b) _mm512_add_ps(a, b)
#define CD_STORE(p, v) _mm512_storeu_ps(p, v)
#define CD_STORE_PART(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), v)
#include "conv_direct_tile.h"

/* AVX2 has 16 vector registers: 4 channels x 2 vectors of accumulators. A 4 x 3 tile (12
 * accumulators, the 3 pixel vectors and a broadcast weight: all 16) made GCC spill an accumulator
 * to the stack, and the chain through memory ran blocks 1 and 2 (nearly all the FLOPs) at 0.6-0.7x
 * the speed of 4 x 2 on a Zen3 (docs/BENCHMARKS.md, 2026-12-02h; block 0, 9 taps, was mixed). */
ESM_INLINE __attribute__((target("arch=x86-64-v3"))) void store_part_avx2(float *p, __m256 v, int n)
{
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    memcpy(p, tmp, (size_t)n * sizeof *p);
}
ESM_INLINE __attribute__((target("arch=x86-64-v3"))) __m256 mask_avx2(unsigned bits)
{
    __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i hit = _mm256_and_si256(_mm256_set1_epi32((int)bits), lane);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(hit, lane));
}
#define CD_ATTR __attribute__((target("arch=x86-64-v3")))
#define CD_NAME(f) f##_avx2
#define CD_VEC __m256
#define CD_V 8
#define CD_MR 4
#define CD_NR 2
#define CD_ZERO() _mm256_setzero_ps()
#define CD_LOAD(p) _mm256_loadu_ps(p)
#define CD_MASK __m256
#define CD_MASK_FROM_BITS(b) mask_avx2(b)
#define CD_LOAD_MASK(p, m) _mm256_and_ps(_mm256_loadu_ps(p), m)
#define CD_SET1(x) _mm256_set1_ps(x)
#define CD_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define CD_ADD(a, b) _mm256_add_ps(a, b)
#define CD_STORE(p, v) _mm256_storeu_ps(p, v)
#define CD_STORE_PART(p, v, n) store_part_avx2(p, v, n)
#include "conv_direct_tile.h"
#endif

/* The portable variant: GCC vector extensions (SSE on x86-64), multiply then add; 4 x 2 for the
 * same reason as AVX2 (its 16 registers also hold the products). */
typedef float cd_v4 __attribute__((vector_size(16)));
typedef int32_t cd_v4i __attribute__((vector_size(16)));
ESM_INLINE cd_v4 load_v4(const float *p)
{
    cd_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}
#define CD_ATTR
#define CD_NAME(f) f##_plain
#define CD_VEC cd_v4
#define CD_V 4
#define CD_MR 4
#define CD_NR 2
#define CD_ZERO() ((cd_v4){0.0f, 0.0f, 0.0f, 0.0f})
#define CD_LOAD(p) load_v4(p)
#define CD_MASK cd_v4i
#define CD_MASK_FROM_BITS(b) ((cd_v4i){-((b)&1), -(((b) >> 1) & 1), -(((b) >> 2) & 1), -(((b) >> 3) & 1)})
#define CD_LOAD_MASK(p, m) ((cd_v4)((cd_v4i)load_v4(p) & (m)))
#define CD_SET1(x) ((cd_v4){0.0f, 0.0f, 0.0f, 0.0f} + (x))
#define CD_FMA(a, b, c) ((a) * (b) + (c))
#define CD_ADD(a, b) ((a) + (b))
#define CD_STORE(p, v) memcpy(p, &(v), sizeof(cd_v4))
#define CD_STORE_PART(p, v, n) memcpy(p, &(v), (size_t)(n) * sizeof(float))
#include "conv_direct_tile.h"

int esm_conv3x3_direct_variant(void)
{
#ifdef CD_X86
    if (__builtin_cpu_supports("x86-64-v4"))
        return ESM_CONV_AVX512;
    if (__builtin_cpu_supports("x86-64-v3"))
        return ESM_CONV_AVX2;
#endif
    return ESM_CONV_PLAIN;
}

/* wt (cp/CD_CPAD, cin*9, CD_CPAD) from wgt (cout, cin, 3, 3); channels cout..cp-1 zero. A tile's
 * weights are then one contiguous run (a few KiB) that stays in L1 next to the taps. */
static void pack_weights(const float *wgt, int cin, int cout, int cp, float *wt)
{
    size_t k = (size_t)cin * 9;
    for (int co = 0; co < cp; co++) {
        float *dst = wt + (size_t)(co / CD_CPAD) * k * CD_CPAD + co % CD_CPAD;
        for (size_t r = 0; r < k; r++)
            dst[r * CD_CPAD] = co < cout ? wgt[(size_t)co * k + r] : 0.0f;
    }
}

/* off (cin*3) for planes of `rows` rows: where the kx = 0 tap of row ky of channel ci starts */
static void tap_offsets(int cin, size_t rows, int w, int *off)
{
    int plane = (int)rows * w;
    for (int ci = 0; ci < cin; ci++)
        for (int ky = 0; ky < 3; ky++)
            off[ci * 3 + ky] = ci * plane + ky * w - 1;
}

static void run_variant(int variant, const struct cd_image *a)
{
#ifdef CD_X86
    if (variant == ESM_CONV_AVX512) {
        image_avx512(a);
        return;
    }
    if (variant == ESM_CONV_AVX2) {
        image_avx2(a);
        return;
    }
#endif
    (void)variant;
    image_plain(a);
}

void esm_conv3x3_direct(int variant, const float *inp, const float *planes, const float *wgt, const float *bias,
                        int n, int cin, int cout, int h, int w, float *scratch, float *out)
{
    int hw = h * w, g = planes ? 1 : stacked_images(h, w);
    struct cd_image a = {.bias = bias, .k = cin * 9, .cout = cout, .w = w};
    a.cp = (cout + CD_CPAD - 1) / CD_CPAD * CD_CPAD;
    size_t pf = (size_t)cin * stack_rows(g, h) * w;
    float *own = scratch + CD_SLACK, *wt = own + pf + CD_SLACK;
    int *off = (int *)(void *)(wt + (size_t)a.cp * a.k);
    float *staging = (float *)(off + 3 * cin);
    pack_weights(wgt, cin, cout, a.cp, wt);
    tap_offsets(cin, stack_rows(g, h), w, off);
    a.wt = wt;
    a.off = off;
    if (!planes) {
        esm_conv3x3_planes_slack(scratch);
        esm_conv3x3_planes_slack(own + pf);
    }
    for (int i = 0; i < n; i += g) {
        int m = n - i < g ? n - i : g;
        if (m < g) /* the last, shorter stack has shorter planes */
            tap_offsets(cin, stack_rows(m, h), w, off);
        if (planes) {
            a.planes = planes + (size_t)i * pf;
        } else {
            planes_stack(inp + (size_t)i * cin * hw, m, cin, h, w, own);
            a.planes = own;
        }
        if (g == 1) {
            a.hw = hw;
            a.out = out + (size_t)i * cout * hw;
            run_variant(variant, &a);
            continue;
        }
        /* the stack's last straddling row is not computed at all */
        a.hw = (m * (h + 1) - 1) * w;
        a.out = staging;
        run_variant(variant, &a);
        for (int j = 0; j < m; j++)
            for (int co = 0; co < cout; co++)
                copy_floats(out + ((size_t)(i + j) * cout + co) * hw, staging + (size_t)co * a.hw + j * (h + 1) * w,
                            hw);
    }
}
