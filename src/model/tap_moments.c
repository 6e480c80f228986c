/* Batch statistics of a conv with few input channels (block 0) from the moments of its input.
 *
 * A conv output without bias is z = sum_t w_t x_t over its T = 9*cin taps x_t (the input shifted
 * by (ci, ky, kx), zero outside the image). Over the batch's N = n*h*w outputs of a channel, its
 * mean is w.S/N and its centred sum of squares is w^T C w, with S_t = sum x_t and
 * C_tu = sum x_t x_u - S_t S_u / N: T + T(T+1)/2 sums of the input that every channel and every
 * ES member shares. A forward-only block 0 thus needs no conv pass for its statistics (cin = 1:
 * 54 sums per image, against 9 taps per output times width channels), and the lowered input
 * (esm_net_lower_input) carries each image's sums, made once per episode for all members.
 *
 * Bits: an image's sums are its own (fixed blocks of pixels, fixed lanes, added in lane order);
 * images are added in image order, in double: the same for any thread count, any split of the
 * batch into calls of esm_net_lower_input, and with or without the lowered input. Products of
 * two floats are exact in double, so the sums lose next to nothing; the statistics are those of
 * the exact conv (the stored z differs from it by the kernel's rounding, ~1e-7 relative). */
#include "core/simd.h"
#include "ws.h"

#include <string.h>

/* Pixels per block of shifted taps (whole image rows; a row longer than this is a block) */
#define TM_BLOCK 256
/* Independent double lanes per sum (one AVX-512 vector) */
#define TM_LANES 8

static int taps(int cin)
{
    return 9 * cin;
}

size_t esm_tap_moments_doubles(int cin)
{
    size_t t = (size_t)taps(cin);
    return t + t * (t + 1) / 2;
}

/* values in a block of one tap: rows of w, rounded up to whole lanes */
static size_t block_values(int w)
{
    size_t rows = w >= TM_BLOCK ? 1 : (size_t)(TM_BLOCK / w);
    return (rows * (size_t)w + TM_LANES - 1) / TM_LANES * TM_LANES;
}

size_t esm_tap_moments_scratch(int cin, int h, int w)
{
    /* as doubles: the image padded with zeros (cin, h+2, w+2), the shifted taps (T, block), the
     * lane sums */
    size_t padded = (size_t)cin * (h + 2) * (w + 2);
    return 2 * (padded + (size_t)taps(cin) * block_values(w) + TM_LANES * esm_tap_moments_doubles(cin));
}

/* acc[0..LANES) += the lane sums of a[i] * b[i] over nb values */
ESM_INLINE void pair_sums(const double *a, const double *b, int nb, double *acc)
{
    double s[TM_LANES];
    memcpy(s, acc, sizeof s);
    for (int i = 0; i < nb; i += TM_LANES)
        for (int l = 0; l < TM_LANES; l++)
            s[l] += a[i + l] * b[i + l];
    memcpy(acc, s, sizeof s);
}

/* The lane sums of one block of nb pixels (a multiple of TM_LANES; the taps past the block's
 * pixels are 0): sum x_t into acc (T, lanes), then sum x_t x_u (t <= u) after it. The taps are
 * doubles already: a product of two floats is exact in double. For each t, four u at a time share
 * the load of x_t (each sum still adds its pixels in the same order). */
ESM_HOT static void block_sums(const double *buf, size_t bs, int t_n, int nb, double *acc)
{
    for (int t = 0; t < t_n; t++) {
        const double *a = buf + (size_t)t * bs;
        double s[TM_LANES];
        memcpy(s, acc + (size_t)t * TM_LANES, sizeof s);
        for (int i = 0; i < nb; i += TM_LANES)
            for (int l = 0; l < TM_LANES; l++)
                s[l] += a[i + l];
        memcpy(acc + (size_t)t * TM_LANES, s, sizeof s);
    }
    double *q = acc + (size_t)t_n * TM_LANES;
    for (int t = 0; t < t_n; t++) {
        const double *a = buf + (size_t)t * bs;
        int u = t;
        for (; u + 4 <= t_n; u += 4, q += 4 * TM_LANES) {
            const double *b0 = buf + (size_t)u * bs, *b1 = b0 + bs, *b2 = b1 + bs, *b3 = b2 + bs;
            double s0[TM_LANES], s1[TM_LANES], s2[TM_LANES], s3[TM_LANES];
            memcpy(s0, q, sizeof s0);
            memcpy(s1, q + TM_LANES, sizeof s1);
            memcpy(s2, q + 2 * TM_LANES, sizeof s2);
            memcpy(s3, q + 3 * TM_LANES, sizeof s3);
            for (int i = 0; i < nb; i += TM_LANES)
                for (int l = 0; l < TM_LANES; l++) {
                    double x = a[i + l];
                    s0[l] += x * b0[i + l];
                    s1[l] += x * b1[i + l];
                    s2[l] += x * b2[i + l];
                    s3[l] += x * b3[i + l];
                }
            memcpy(q, s0, sizeof s0);
            memcpy(q + TM_LANES, s1, sizeof s1);
            memcpy(q + 2 * TM_LANES, s2, sizeof s2);
            memcpy(q + 3 * TM_LANES, s3, sizeof s3);
        }
        for (; u < t_n; u++, q += TM_LANES)
            pair_sums(a, buf + (size_t)u * bs, nb, q);
    }
}

void esm_tap_moments_image(const float *img, int cin, int h, int w, float *scratch, double *mom)
{
    int t_n = taps(cin), pw = w + 2;
    size_t bs = block_values(w), d = esm_tap_moments_doubles(cin), pp = (size_t)(h + 2) * pw;
    int rows = w >= TM_BLOCK ? 1 : TM_BLOCK / w;
    double *pad = (double *)(void *)scratch, *buf = pad + (size_t)cin * pp, *acc = buf + (size_t)t_n * bs;
    memset(pad, 0, cin * pp * sizeof *pad);
    for (int ci = 0; ci < cin; ci++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                pad[ci * pp + (size_t)(y + 1) * pw + x + 1] = img[((size_t)ci * h + y) * w + x];
    memset(acc, 0, d * TM_LANES * sizeof *acc);
    for (int y0 = 0; y0 < h; y0 += rows) {
        int ny = h - y0 < rows ? h - y0 : rows, nb = (ny * w + TM_LANES - 1) / TM_LANES * TM_LANES;
        for (int t = 0; t < t_n; t++) {
            int ci = t / 9, ky = t / 3 % 3, kx = t % 3;
            double *dst = buf + (size_t)t * bs;
            /* tap (ci, ky, kx) of pixel (y, x) is the padded image at (y + ky, x + kx) */
            for (int r = 0; r < ny; r++)
                memcpy(dst + (size_t)r * w, pad + ci * pp + (size_t)(y0 + r + ky) * pw + kx, (size_t)w * sizeof *dst);
            for (int i = ny * w; i < nb; i++)
                dst[i] = 0.0;
        }
        block_sums(buf, bs, t_n, nb, acc);
    }
    for (size_t j = 0; j < d; j++) {
        double s = 0.0;
        for (int l = 0; l < TM_LANES; l++)
            s += acc[j * TM_LANES + l];
        mom[j] = s;
    }
}

void esm_tap_moments_stats(const double *mom, int n, int cin, int hw, const float *wgt, int cout, double *moments)
{
    enum { MAX_T = 9 * ESM_TAP_MAX_CIN };
    int t_n = taps(cin);
    size_t d = esm_tap_moments_doubles(cin);
    double tot[MAX_T + MAX_T * (MAX_T + 1) / 2] = {0}, c[MAX_T][MAX_T];
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            tot[j] += mom[(size_t)i * d + j];
    double count = (double)n * hw;
    const double *s = tot, *q = tot + t_n;
    for (int t = 0; t < t_n; t++)
        for (int u = t; u < t_n; u++, q++)
            c[t][u] = c[u][t] = *q - s[t] * s[u] / count;
    for (int co = 0; co < cout; co++) {
        const float *wc = wgt + (size_t)co * t_n;
        double sum = 0.0, m2 = 0.0;
        for (int t = 0; t < t_n; t++) {
            double row = 0.0;
            for (int u = 0; u < t_n; u++)
                row += c[t][u] * wc[u];
            sum += wc[t] * s[t];
            m2 += wc[t] * row;
        }
        moments[3 * co] = count;
        moments[3 * co + 1] = sum / count;
        moments[3 * co + 2] = m2 < 0.0 ? 0.0 : m2; /* a rounding below 0; NaN stays NaN */
    }
}
