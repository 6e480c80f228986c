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

/* floats of a block of one tap: rows of w, rounded up to whole lanes */
static size_t block_floats(int w)
{
    size_t rows = w >= TM_BLOCK ? 1 : (size_t)(TM_BLOCK / w);
    return (rows * (size_t)w + TM_LANES - 1) / TM_LANES * TM_LANES;
}

size_t esm_tap_moments_scratch(int cin, int w)
{
    /* the shifted taps (T, block), then the lane sums (doubles) */
    return (size_t)taps(cin) * block_floats(w) + 2 * TM_LANES * esm_tap_moments_doubles(cin);
}

/* dst[x] = row[x + kx - 1], 0 outside the row */
static void shifted_row(const float *row, int w, int kx, float *dst)
{
    if (kx == 1) {
        memcpy(dst, row, (size_t)w * sizeof *dst);
    } else if (kx == 0) {
        dst[0] = 0.0f;
        memcpy(dst + 1, row, (size_t)(w - 1) * sizeof *dst);
    } else {
        memcpy(dst, row + 1, (size_t)(w - 1) * sizeof *dst);
        dst[w - 1] = 0.0f;
    }
}

/* The lane sums of one block of nb pixels (a multiple of TM_LANES; the taps past the block's
 * pixels are 0): sum x_t into acc (T, lanes), then sum x_t x_u (t <= u) after it. */
ESM_HOT static void block_sums(const float *buf, size_t bs, int t_n, int nb, double *acc)
{
    for (int t = 0; t < t_n; t++) {
        const float *a = buf + (size_t)t * bs;
        double s[TM_LANES];
        memcpy(s, acc + (size_t)t * TM_LANES, sizeof s);
        for (int i = 0; i < nb; i += TM_LANES)
            for (int l = 0; l < TM_LANES; l++)
                s[l] += a[i + l];
        memcpy(acc + (size_t)t * TM_LANES, s, sizeof s);
    }
    double *q = acc + (size_t)t_n * TM_LANES;
    for (int t = 0; t < t_n; t++)
        for (int u = t; u < t_n; u++, q += TM_LANES) {
            const float *a = buf + (size_t)t * bs, *b = buf + (size_t)u * bs;
            double s[TM_LANES];
            memcpy(s, q, sizeof s);
            for (int i = 0; i < nb; i += TM_LANES)
                for (int l = 0; l < TM_LANES; l++)
                    s[l] += (double)a[i + l] * (double)b[i + l];
            memcpy(q, s, sizeof s);
        }
}

void esm_tap_moments_image(const float *img, int cin, int h, int w, float *scratch, double *mom)
{
    int t_n = taps(cin);
    size_t bs = block_floats(w), d = esm_tap_moments_doubles(cin);
    int rows = w >= TM_BLOCK ? 1 : TM_BLOCK / w;
    float *buf = scratch;
    double *acc = (double *)(void *)(scratch + (size_t)t_n * bs);
    memset(acc, 0, d * TM_LANES * sizeof *acc);
    for (int y0 = 0; y0 < h; y0 += rows) {
        int ny = h - y0 < rows ? h - y0 : rows, nb = (ny * w + TM_LANES - 1) / TM_LANES * TM_LANES;
        for (int t = 0; t < t_n; t++) {
            int ci = t / 9, ky = t / 3 % 3, kx = t % 3;
            float *dst = buf + (size_t)t * bs;
            for (int r = 0; r < ny; r++) {
                int yy = y0 + r + ky - 1;
                if (yy < 0 || yy >= h)
                    memset(dst + (size_t)r * w, 0, (size_t)w * sizeof *dst);
                else
                    shifted_row(img + ((size_t)ci * h + yy) * w, w, kx, dst + (size_t)r * w);
            }
            for (int i = ny * w; i < nb; i++)
                dst[i] = 0.0f;
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
