/* 3x3 convolution, stride 1, zero padding 1, with bias: im2col + sgemm.
 * For one image the conv is out (cout, hw) = wgt (cout, cin*9) @ col (cin*9, hw). Small
 * images (the later blocks: 7x7, 3x3) give sgemm too few columns to run at full speed, so
 * G images are lowered side by side into col (cin*9, G*hw) and multiplied at once; the
 * result (cout, G*hw) is then scattered to NCHW. */
#include "core/simd.h"
#include "reduce.h"
#include "ws.h"

#include <cblas.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Columns per sgemm worth aiming for: below ~200, OpenBLAS's sgemm loses 15-40% (measured
 * with M = 64, K = 576 on AVX-512). */
#define CONV_TARGET_COLS 192

static int group_size(int hw, int n)
{
    int g = (CONV_TARGET_COLS + hw - 1) / hw;
    return g < n ? g : n;
}

int esm_conv3x3_group_images(int hw)
{
    return group_size(hw, 1 << 30);
}

size_t esm_conv3x3_scratch(int cin, int cout, int h, int w)
{
    size_t cols = (size_t)group_size(h * w, 1 << 30) * h * w;
    /* col and dcol (cin*9, cols), the grouped output or its gradient (cout, cols), im2col's
     * edge masks (3, h*w) */
    return (2 * (size_t)cin * 9 + cout) * cols + 3 * (size_t)h * w;
}

/* col row r = ci*9 + ky*3 + kx holds inp[ci, y+ky-1, x+kx-1] at column y*w + x (0 outside);
 * rows are ld apart. Image rows are short (28, 14, 7, 3 floats), so a loop per image row spends
 * its time starting and ending: each col row is instead the source plane shifted by
 * (ky-1)*w + kx-1, copied in one pass, with the entries that wrapped across an image row cleared
 * where edge[kx] is 0 (column 0 for kx = 0, column w-1 for kx = 2; see im2col_edges). Entries
 * are only moved, so the values are exactly the plane's. */
ESM_HOT static void im2col3x3(const float *restrict inp, int cin, int h, int w, size_t ld,
                              const uint32_t *restrict edge, float *restrict col)
{
    size_t hw = (size_t)h * w;
    for (int ci = 0; ci < cin; ci++) {
        const float *src = inp + (size_t)ci * hw;
        for (int ky = 0; ky < 3; ky++) {
            /* output rows y0..y1-1 read source rows y+ky-1 inside the image */
            size_t y0 = ky == 0 ? 1 : 0, y1 = ky == 2 ? h - 1 : h;
            for (int kx = 0; kx < 3; kx++) {
                float *row = col + ((size_t)ci * 9 + ky * 3 + kx) * ld;
                int dx = kx - 1;
                for (size_t p = 0; p < y0 * w; p++)
                    row[p] = 0.0f;
                for (size_t p = y1 * w; p < hw; p++)
                    row[p] = 0.0f;
                /* the one entry that would read before the plane (dx < 0) or past it (dx > 0) is
                 * an edge entry: cleared, not read */
                size_t b = y0 * w + (dx < 0), e = y1 * w - (dx > 0);
                if (dx < 0 && b <= e)
                    row[b - 1] = 0.0f;
                if (dx > 0 && b <= e)
                    row[e] = 0.0f;
                const float *s = src + (ptrdiff_t)(ky - 1) * w + dx;
                const uint32_t *keep = edge + (size_t)kx * hw;
                if (dx == 0)
                    for (size_t p = b; p < e; p++)
                        row[p] = s[p];
                else
                    for (size_t p = b; p < e; p++)
                        row[p] = keep[p] ? s[p] : 0.0f;
            }
        }
    }
}

/* edge[kx] (3, h*w) for im2col3x3 */
static void im2col_edges(int h, int w, uint32_t *edge)
{
    size_t hw = (size_t)h * w;
    for (size_t p = 0; p < hw; p++) {
        size_t x = p % (size_t)w;
        edge[p] = x != 0;
        edge[hw + p] = 1;
        edge[2 * hw + p] = x != (size_t)w - 1;
    }
}

/* im2col's edge masks: the last 3*h*w floats of the scratch (esm_conv3x3_scratch) */
static uint32_t *edge_masks(float *scratch, int cin, int cout, int h, int w)
{
    size_t cols = (size_t)group_size(h * w, 1 << 30) * h * w;
    return (uint32_t *)(void *)(scratch + (2 * (size_t)cin * 9 + cout) * cols);
}

/* Adjoint of im2col3x3: d_inp (cin, h, w) += scatter of dcol. */
static void col2im3x3_add(const float *restrict dcol, int cin, int h, int w, size_t ld, float *restrict d_inp)
{
    for (int ci = 0; ci < cin; ci++) {
        float *dst = d_inp + (size_t)ci * h * w;
        for (int ky = 0; ky < 3; ky++) {
            for (int kx = 0; kx < 3; kx++) {
                const float *row = dcol + ((size_t)ci * 9 + ky * 3 + kx) * ld;
                int dx = kx - 1;
                int x0 = dx < 0 ? 1 : 0, x1 = dx > 0 ? w - 1 : w;
                for (int y = 0; y < h; y++) {
                    int sy = y + ky - 1;
                    if (sy < 0 || sy >= h)
                        continue;
                    const float *s = row + (size_t)y * w;
                    float *d = dst + (size_t)sy * w + dx;
                    for (int x = x0; x < x1; x++)
                        d[x] += s[x];
                }
            }
        }
    }
}

/* Between (cout, g*hw) grouped and g images of (cout, hw). */
static void scatter_group(const float *grp, int g, int cout, int hw, float *out)
{
    for (int j = 0; j < g; j++)
        for (int co = 0; co < cout; co++)
            memcpy(out + ((size_t)j * cout + co) * hw, grp + (size_t)co * g * hw + (size_t)j * hw,
                   (size_t)hw * sizeof *out);
}

static void gather_group(const float *imgs, int g, int cout, int hw, float *grp)
{
    for (int j = 0; j < g; j++)
        for (int co = 0; co < cout; co++)
            memcpy(grp + (size_t)co * g * hw + (size_t)j * hw, imgs + ((size_t)j * cout + co) * hw,
                   (size_t)hw * sizeof *grp);
}

/* Where image j of a conv call over n images lands in its lowered input: groups of gmax images
 * are (k, g*hw) blocks one after the other, image j at column (j mod gmax)*hw of its group. */
static float *lowered_at(float *cols, int j, int n, int k, int hw, size_t *ld)
{
    int gmax = group_size(hw, n), g0 = j / gmax * gmax, g = n - g0 < gmax ? n - g0 : gmax;
    *ld = (size_t)g * hw;
    return cols + (size_t)g0 * k * hw + (size_t)(j - g0) * hw;
}

esm_status esm_conv3x3_lower_images(const float *inp, int first, int count, int n, int cin, int h, int w,
                                    float *cols, esm_err *err)
{
    size_t hw = (size_t)h * w;
    uint32_t *edge = malloc(3 * hw * sizeof *edge);
    if (!edge)
        return esm_fail(err, ESM_ENOMEM, "conv: out of memory for im2col edge masks (%dx%d)", h, w);
    im2col_edges(h, w, edge);
    for (int j = first; j < first + count; j++) {
        size_t ld;
        float *at = lowered_at(cols, j, n, cin * 9, h * w, &ld);
        im2col3x3(inp + (size_t)(j - first) * cin * hw, cin, h, w, ld, edge, at);
    }
    free(edge);
    return ESM_OK;
}

void esm_conv3x3_forward_lowered(const float *inp, const float *cols, const float *wgt, const float *bias, int n,
                                 int cin, int cout, int h, int w, float *scratch, float *out)
{
    int hw = h * w, k = cin * 9, gmax = group_size(hw, n);
    float *col = scratch, *grp = scratch + (size_t)k * gmax * hw;
    uint32_t *edge = edge_masks(scratch, cin, cout, h, w);
    if (!cols)
        im2col_edges(h, w, edge);
    for (int i0 = 0; i0 < n; i0 += gmax) {
        int g = n - i0 < gmax ? n - i0 : gmax;
        size_t ld = (size_t)g * hw;
        const float *c = cols ? cols + (size_t)i0 * k * hw : col;
        for (int j = 0; j < g && !cols; j++)
            im2col3x3(inp + (size_t)(i0 + j) * cin * hw, cin, h, w, ld, edge, col + (size_t)j * hw);
        /* one image writes straight into out; a group goes through grp */
        float *o = g == 1 ? out + (size_t)i0 * cout * hw : grp;
        float beta = 0.0f;
        if (bias) {
            /* Pre-filling with the bias lets sgemm add into it (beta = 1). */
            for (int co = 0; co < cout; co++)
                for (size_t p = 0; p < ld; p++)
                    o[co * ld + p] = bias[co];
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, (int)ld, k, 1.0f, wgt, k, c, (int)ld, beta, o,
                    (int)ld);
        if (g > 1)
            scatter_group(grp, g, cout, hw, out + (size_t)i0 * cout * hw);
    }
}

void esm_conv3x3_forward(const float *inp, const float *wgt, const float *bias, int n, int cin, int cout,
                         int h, int w, float *scratch, float *out)
{
    esm_conv3x3_forward_lowered(inp, NULL, wgt, bias, n, cin, cout, h, w, scratch, out);
}

void esm_conv3x3_backward(const float *inp, const float *wgt, const float *d_out, int n, int cin, int cout,
                          int h, int w, float *scratch, float *d_inp, float *d_wgt, float *d_bias)
{
    int hw = h * w, k = cin * 9, gmax = group_size(hw, n);
    float *col = scratch, *dcol = col + (size_t)k * gmax * hw, *grp = dcol + (size_t)k * gmax * hw;
    uint32_t *edge = edge_masks(scratch, cin, cout, h, w);
    im2col_edges(h, w, edge);
    memset(d_wgt, 0, (size_t)cout * k * sizeof *d_wgt);
    for (int co = 0; co < cout; co++)
        d_bias[co] = 0.0f;
    for (int i0 = 0; i0 < n; i0 += gmax) {
        int g = n - i0 < gmax ? n - i0 : gmax;
        size_t ld = (size_t)g * hw;
        for (int j = 0; j < g; j++)
            im2col3x3(inp + (size_t)(i0 + j) * cin * hw, cin, h, w, ld, edge, col + (size_t)j * hw);
        /* dz is (cout, g*hw) */
        const float *dz = d_out + (size_t)i0 * cout * hw;
        if (g > 1) {
            gather_group(dz, g, cout, hw, grp);
            dz = grp;
        }
        /* d_wgt (cout, k) += dz (cout, g*hw) @ col^T (g*hw, k) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cout, k, (int)ld, 1.0f, dz, (int)ld, col, (int)ld, 1.0f,
                    d_wgt, k);
        for (int co = 0; co < cout; co++)
            d_bias[co] += esm_sum(dz + co * ld, (int)ld);
        if (!d_inp)
            continue;
        /* dcol (k, g*hw) = wgt^T (k, cout) @ dz (cout, g*hw) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, (int)ld, cout, 1.0f, wgt, k, dz, (int)ld, 0.0f, dcol,
                    (int)ld);
        float *di = d_inp + (size_t)i0 * cin * hw;
        memset(di, 0, (size_t)g * cin * hw * sizeof *di);
        for (int j = 0; j < g; j++)
            col2im3x3_add(dcol + (size_t)j * hw, cin, h, w, ld, di + (size_t)j * cin * hw);
    }
}
