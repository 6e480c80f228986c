/* Separable resizing: each axis is a list of taps (first source index, integer weights over a
 * common denominator), so shrinking (area averaging) and enlarging (bilinear) share one two-pass
 * loop. The weights are exact rationals, so sums are exact integers and rounding to the nearest
 * byte is exact too: a value exactly halfway rounds to even, never by the accident of a floating
 * point error (floating weights such as 17/40 put some halfway values a hair below). */
#include <stdint.h>
#include <stdlib.h>

#include "data/image.h"

typedef struct {
    int first, count;
    int64_t *w;
} tap;

/* Taps per output: area averaging touches at most ceil(n/m) + 1 sources, bilinear 2. */
static int tap_width(int n, int m) { return m < n ? (n + m - 1) / m + 1 : 2; }

/* Output i covers [i*n/m, (i+1)*n/m) of the source; each source pixel counts by its overlap.
 * In units of 1/m, output i spans [i*n, (i+1)*n) and source k spans [k*m, (k+1)*m): the
 * overlaps are integers adding up to n, the denominator. */
static int64_t area_taps(int n, int m, tap *t)
{
    for (int i = 0; i < m; i++) {
        int64_t lo = (int64_t)i * n, hi = lo + n;
        int k0 = (int)(lo / m), k1 = (int)((hi + m - 1) / m);
        if (k1 > n)
            k1 = n;
        t[i].first = k0;
        t[i].count = k1 - k0;
        for (int k = k0; k < k1; k++) {
            int64_t a = (int64_t)k * m > lo ? (int64_t)k * m : lo, b = (int64_t)(k + 1) * m < hi ? (int64_t)(k + 1) * m : hi;
            t[i].w[k - k0] = b > a ? b - a : 0;
        }
    }
    return n;
}

/* Output centre i + 0.5 maps to source position x = (i + 0.5) * n/m - 0.5 (OpenCV's and PIL's
 * convention), clamped to [0, n-1] and interpolated between floor(x) and the next pixel. In
 * units of 1/(2m), x = (2i+1)n - m: the weights are integers adding up to 2m. */
static int64_t bilinear_taps(int n, int m, tap *t)
{
    int64_t d = 2 * (int64_t)m;
    for (int i = 0; i < m; i++) {
        int64_t x = (int64_t)(2 * i + 1) * n - m;
        if (x < 0)
            x = 0;
        if (x > d * (n - 1))
            x = d * (n - 1);
        int k = (int)(x / d);
        if (k > n - 2)
            k = n > 1 ? n - 2 : 0;
        int64_t f = x - d * k;
        t[i].first = k;
        t[i].count = n > 1 ? 2 : 1;
        t[i].w[0] = n > 1 ? d - f : d;
        t[i].w[1] = f;
    }
    return d;
}

/* Returns the denominator of the axis' weights. */
static int64_t make_taps(int n, int m, tap *t, int64_t *wbuf)
{
    for (int i = 0; i < m; i++)
        t[i].w = wbuf + (size_t)i * tap_width(n, m);
    return m < n ? area_taps(n, m, t) : bilinear_taps(n, m, t); /* m == n gives weights (d, 0): a copy */
}

/* s / d rounded to the nearest integer, halfway to even; (255d - s) / d the same way when inverted,
 * so an inverted image is the rounding of the inverted average. */
static uint8_t to_byte(int64_t s, int64_t d, int invert)
{
    if (invert)
        s = 255 * d - s;
    int64_t q = s / d, r = s % d;
    q += 2 * r > d || (2 * r == d && (q & 1));
    return (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
}

esm_status esm_image_resize(const esm_image *im, int oh, int ow, int invert, uint8_t *out)
{
    int sh = im->height, sw = im->width, ch = im->channels;
    size_t nwy = (size_t)oh * tap_width(sh, oh), nwx = (size_t)ow * tap_width(sw, ow);
    tap *ty = malloc(sizeof *ty * (size_t)(oh + ow));
    int64_t *rows = malloc(sizeof *rows * ((size_t)oh * sw + nwy + nwx));
    if (!ty || !rows) {
        free(ty), free(rows);
        return ESM_ENOMEM;
    }
    tap *tx = ty + oh;
    int64_t dy = make_taps(sh, oh, ty, rows + (size_t)oh * sw);
    int64_t dx = make_taps(sw, ow, tx, rows + (size_t)oh * sw + nwy);
    for (int c = 0; c < ch; c++, out += (size_t)oh * ow) {
        for (int i = 0; i < oh; i++) /* rows = Wy * plane : (oh, sw), in units of 1/dy */
            for (int x = 0; x < sw; x++) {
                int64_t s = 0;
                for (int k = 0; k < ty[i].count; k++)
                    s += ty[i].w[k] * im->px[((size_t)(ty[i].first + k) * sw + x) * ch + c];
                rows[(size_t)i * sw + x] = s;
            }
        for (int i = 0; i < oh; i++) /* out = rows * Wx^T, in units of 1/(dy dx) */
            for (int j = 0; j < ow; j++) {
                int64_t s = 0;
                for (int k = 0; k < tx[j].count; k++)
                    s += tx[j].w[k] * rows[(size_t)i * sw + tx[j].first + k];
                out[(size_t)i * ow + j] = to_byte(s, dy * dx, invert);
            }
    }
    free(ty);
    free(rows);
    return ESM_OK;
}
