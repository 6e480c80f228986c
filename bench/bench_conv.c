/* The direct conv forward alone (src/model/conv_direct.c, the variant this CPU runs, its padded
 * planes included) on the conv-4 net's block shapes at a width, next to cblas_sgemm on the same
 * FLOPs as im2col + SGEMM would lay them out (one image: out (cout, h*w) = W (cout, cin*9) x col).
 * Each call is short (the images of one forward chunk), so the best of many calls is reported: on
 * a shared core it is the one a time slice did not cut.
 * Usage: build/bench_conv [WIDTH [REPS [VARIANT]]] (default 16, 300, the CPU's best; VARIANT 0 is the
 * portable one, 1 AVX2, 2 AVX-512, at most the best); one JSON line per block. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "model/ws.h" /* esm_conv3x3_direct: the forward's own kernel */

/* Best seconds of reps calls of the direct conv and of the equivalent SGEMMs. */
static int time_block(int v, int cin, int cout, int h, int w, int n, int reps, double *t_conv, double *t_gemm)
{
    size_t img = (size_t)cin * h * w, k = (size_t)cin * 9, hw = (size_t)h * w;
    float *x = malloc(n * img * sizeof *x), *wgt = malloc(cout * k * sizeof *wgt);
    float *out = malloc(n * cout * hw * sizeof *out), *col = malloc(k * hw * sizeof *col);
    float *scratch = malloc(esm_conv3x3_direct_scratch(cin, cout, h, w) * sizeof *scratch);
    if (!x || !wgt || !out || !col || !scratch) {
        free(x), free(wgt), free(out), free(col), free(scratch);
        return -1;
    }
    for (size_t i = 0; i < n * img; i++)
        x[i] = (float)(i % 7) - 3.0f;
    for (size_t i = 0; i < cout * k; i++)
        wgt[i] = 0.01f * (float)(i % 5);
    for (size_t i = 0; i < k * hw; i++)
        col[i] = (float)(i % 3);
    *t_conv = *t_gemm = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        esm_conv3x3_direct(v, x, NULL, wgt, NULL, n, cin, cout, h, w, scratch, out);
        double t1 = now_s();
        for (int i = 0; i < n; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, (int)hw, (int)k, 1.0f, wgt, (int)k, col,
                        (int)hw, 0.0f, out + i * cout * hw, (int)hw);
        double t2 = now_s();
        *t_conv = t1 - t0 < *t_conv ? t1 - t0 : *t_conv;
        *t_gemm = t2 - t1 < *t_gemm ? t2 - t1 : *t_gemm;
    }
    free(x), free(wgt), free(out), free(col), free(scratch);
    return 0;
}

int main(int argc, char **argv)
{
    int width = argc > 1 ? atoi(argv[1]) : 16, reps = argc > 2 ? atoi(argv[2]) : 300;
    int best = esm_conv3x3_direct_variant(), variant = argc > 3 ? atoi(argv[3]) : best;
    if (width < 1 || reps < 1 || variant < 0 || variant > best) {
        fprintf(stderr, "usage: %s [WIDTH [REPS [VARIANT]]] (VARIANT 0..%d on this CPU)\n", argv[0], best);
        return 2;
    }
    static const struct {
        int cin_is_width, h, n; /* n: images of a forward chunk of that block (width 16) */
    } blocks[] = {{0, 28, 5}, {1, 14, 20}, {1, 7, 50}, {1, 3, 50}};
    for (int b = 0; b < 4; b++) {
        int cin = blocks[b].cin_is_width ? width : 1, h = blocks[b].h, n = blocks[b].n;
        double tc, tg;
        if (time_block(variant, cin, width, h, h, n, reps, &tc, &tg) != 0) {
            fprintf(stderr, "bench_conv: out of memory\n");
            return 1;
        }
        double flops = 2.0 * n * width * cin * 9.0 * h * h;
        printf("{\"what\":\"conv_direct\",\"variant\":%d,\"width\":%d,\"cin\":%d,\"hw\":\"%dx%d\",\"images\":%d,"
               "\"direct_gflop_per_s\":%.1f,\"sgemm_gflop_per_s\":%.1f}\n",
               variant, width, cin, h, h, n, flops / tc * 1e-9, flops / tg * 1e-9);
    }
    return 0;
}
