/* 3x3 convolution, stride 1, zero padding 1, with bias: im2col + one sgemm per image.
 * Per image the conv is out (cout, hw) = wgt (cout, cin*9) @ col (cin*9, hw). */
#include "esmeta/model.h"
#include "reduce.h"

#include <cblas.h>
#include <string.h>

/* col row r = ci*9 + ky*3 + kx holds inp[ci, y+ky-1, x+kx-1] at column y*w + x (0 outside). */
static void im2col3x3(const float *inp, int cin, int h, int w, float *col)
{
    for (int ci = 0; ci < cin; ci++) {
        const float *src = inp + (size_t)ci * h * w;
        for (int ky = 0; ky < 3; ky++) {
            for (int kx = 0; kx < 3; kx++) {
                float *row = col + ((size_t)ci * 9 + ky * 3 + kx) * h * w;
                int dx = kx - 1;
                /* valid x range: 0 <= x+dx < w */
                int x0 = dx < 0 ? 1 : 0, x1 = dx > 0 ? w - 1 : w;
                for (int y = 0; y < h; y++) {
                    int sy = y + ky - 1;
                    float *dst = row + (size_t)y * w;
                    if (sy < 0 || sy >= h) {
                        memset(dst, 0, (size_t)w * sizeof *dst);
                        continue;
                    }
                    if (x0 > 0)
                        dst[0] = 0.0f;
                    if (x1 < w)
                        dst[w - 1] = 0.0f;
                    if (x1 > x0)
                        memcpy(dst + x0, src + (size_t)sy * w + x0 + dx, (size_t)(x1 - x0) * sizeof *dst);
                }
            }
        }
    }
}

/* Adjoint of im2col3x3: d_inp (cin, h, w) += scatter of dcol. */
static void col2im3x3_add(const float *dcol, int cin, int h, int w, float *d_inp)
{
    for (int ci = 0; ci < cin; ci++) {
        float *dst = d_inp + (size_t)ci * h * w;
        for (int ky = 0; ky < 3; ky++) {
            for (int kx = 0; kx < 3; kx++) {
                const float *row = dcol + ((size_t)ci * 9 + ky * 3 + kx) * h * w;
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

void esm_conv3x3_forward(const float *inp, const float *wgt, const float *bias, int n, int cin, int cout,
                         int h, int w, float *col, float *out)
{
    int hw = h * w, k = cin * 9;
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * cout * hw;
        im2col3x3(inp + (size_t)i * cin * hw, cin, h, w, col);
        /* Pre-filling with the bias lets sgemm add into it (beta = 1). */
        for (int co = 0; co < cout; co++)
            for (int p = 0; p < hw; p++)
                o[(size_t)co * hw + p] = bias[co];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, hw, k, 1.0f, wgt, k, col, hw, 1.0f, o, hw);
    }
}

void esm_conv3x3_backward(const float *inp, const float *wgt, const float *d_out, int n, int cin, int cout,
                          int h, int w, float *col, float *dcol, float *d_inp, float *d_wgt, float *d_bias)
{
    int hw = h * w, k = cin * 9;
    memset(d_wgt, 0, (size_t)cout * k * sizeof *d_wgt);
    for (int co = 0; co < cout; co++)
        d_bias[co] = 0.0f;
    for (int i = 0; i < n; i++) {
        const float *dz = d_out + (size_t)i * cout * hw;
        im2col3x3(inp + (size_t)i * cin * hw, cin, h, w, col);
        /* d_wgt (cout, k) += dz (cout, hw) @ col^T (hw, k) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cout, k, hw, 1.0f, dz, hw, col, hw, 1.0f, d_wgt, k);
        for (int co = 0; co < cout; co++)
            d_bias[co] += esm_sum(dz + (size_t)co * hw, hw);
        if (d_inp) {
            float *di = d_inp + (size_t)i * cin * hw;
            /* dcol (k, hw) = wgt^T (k, cout) @ dz (cout, hw) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, hw, cout, 1.0f, wgt, k, dz, hw, 0.0f, dcol, hw);
            memset(di, 0, (size_t)cin * hw * sizeof *di);
            col2im3x3_add(dcol, cin, h, w, di);
        }
    }
}
