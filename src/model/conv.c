/* 3x3 convolution, stride 1, zero padding 1, with bias. The forward is the direct conv
 * (conv_direct.c); the backward is im2col + sgemm, since its weight gradient needs the lowered
 * input anyway. For one image the weight gradient is d_wgt (cout, cin*9) += d_out (cout, hw) @
 * col^T (hw, cin*9). Small images (the later blocks: 7x7, 3x3) give sgemm too few columns to run
 * at full speed, so G images are lowered side by side into col (cin*9, G*hw) and multiplied at
 * once, their gradients gathered into (cout, G*hw). */
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
    /* backward: col and dcol (cin*9, cols), the grouped gradient (cout, cols), im2col's edge
     * masks (3, h*w); forward: the direct conv's */
    size_t back = (2 * (size_t)cin * 9 + cout) * cols + 3 * (size_t)h * w;
    size_t fwd = esm_conv3x3_direct_scratch(cin, cout, h, w);
    return back > fwd ? back : fwd;
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

/* (cout, g*hw) grouped from g images of (cout, hw). */
static void gather_group(const float *imgs, int g, int cout, int hw, float *grp)
{
    for (int j = 0; j < g; j++)
        for (int co = 0; co < cout; co++)
            memcpy(grp + (size_t)co * g * hw + (size_t)j * hw, imgs + ((size_t)j * cout + co) * hw,
                   (size_t)hw * sizeof *grp);
}

void esm_conv3x3_forward(const float *inp, const float *wgt, const float *bias, int n, int cin, int cout,
                         int h, int w, float *scratch, float *out)
{
    esm_conv3x3_direct(esm_conv3x3_direct_variant(), inp, NULL, wgt, bias, n, cin, cout, h, w, scratch, out);
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
