/* Separable resizing: each axis is a list of taps (first source index, weights), so shrinking
 * (area averaging) and enlarging (bilinear) share one two-pass loop. */
#include <math.h>
#include <stdlib.h>

#include "data/image.h"

typedef struct {
    int first, count;
    double *w;
} tap;

/* Taps per output: area averaging touches at most ceil(n/m) + 1 sources, bilinear 2. */
static int tap_width(int n, int m) { return m < n ? (n + m - 1) / m + 1 : 2; }

/* Output i covers [i*n/m, (i+1)*n/m) of the source; each source pixel counts by its overlap. */
static void area_taps(int n, int m, tap *t)
{
    double scale = (double)n / m;
    for (int i = 0; i < m; i++) {
        double lo = i * scale, hi = (i + 1) * scale;
        int k0 = (int)floor(lo), k1 = (int)ceil(hi);
        if (k1 > n)
            k1 = n;
        t[i].first = k0;
        t[i].count = k1 - k0;
        for (int k = k0; k < k1; k++) {
            double a = k > lo ? k : lo, b = k + 1 < hi ? k + 1 : hi;
            t[i].w[k - k0] = b > a ? (b - a) / scale : 0.0;
        }
    }
}

/* Output centre i + 0.5 maps to source position (i + 0.5) * n/m - 0.5 (OpenCV's and PIL's
 * convention), interpolated between its two neighbours, clamped at the borders. */
static void bilinear_taps(int n, int m, tap *t)
{
    double scale = (double)n / m;
    for (int i = 0; i < m; i++) {
        double x = (i + 0.5) * scale - 0.5;
        if (x < 0)
            x = 0;
        if (x > n - 1)
            x = n - 1;
        int k = (int)floor(x);
        if (k > n - 2)
            k = n > 1 ? n - 2 : 0;
        double f = x - k;
        t[i].first = k;
        t[i].count = n > 1 ? 2 : 1;
        t[i].w[0] = n > 1 ? 1.0 - f : 1.0;
        t[i].w[1] = f;
    }
}

static void make_taps(int n, int m, tap *t, double *wbuf)
{
    for (int i = 0; i < m; i++)
        t[i].w = wbuf + (size_t)i * tap_width(n, m);
    if (m < n)
        area_taps(n, m, t);
    else
        bilinear_taps(n, m, t); /* m == n gives weights (1, 0): a copy */
}

static uint8_t to_byte(double s, int invert)
{
    double v = invert ? 255.0 - s : s;
    return (uint8_t)lrint(v < 0 ? 0 : v > 255 ? 255 : v);
}

esm_status esm_image_resize(const esm_image *im, int oh, int ow, int invert, uint8_t *out)
{
    int sh = im->height, sw = im->width, ch = im->channels;
    size_t nwy = (size_t)oh * tap_width(sh, oh), nwx = (size_t)ow * tap_width(sw, ow);
    tap *ty = malloc(sizeof *ty * (size_t)(oh + ow));
    double *rows = malloc(sizeof *rows * ((size_t)oh * sw + nwy + nwx));
    if (!ty || !rows) {
        free(ty), free(rows);
        return ESM_ENOMEM;
    }
    tap *tx = ty + oh;
    make_taps(sh, oh, ty, rows + (size_t)oh * sw);
    make_taps(sw, ow, tx, rows + (size_t)oh * sw + nwy);
    for (int c = 0; c < ch; c++, out += (size_t)oh * ow) {
        for (int i = 0; i < oh; i++) /* rows = Wy * plane : (oh, sw) */
            for (int x = 0; x < sw; x++) {
                double s = 0;
                for (int k = 0; k < ty[i].count; k++)
                    s += ty[i].w[k] * im->px[((size_t)(ty[i].first + k) * sw + x) * ch + c];
                rows[(size_t)i * sw + x] = s;
            }
        for (int i = 0; i < oh; i++) /* out = rows * Wx^T */
            for (int j = 0; j < ow; j++) {
                double s = 0;
                for (int k = 0; k < tx[j].count; k++)
                    s += tx[j].w[k] * rows[(size_t)i * sw + tx[j].first + k];
                out[(size_t)i * ow + j] = to_byte(s, invert);
            }
    }
    free(ty);
    free(rows);
    return ESM_OK;
}
