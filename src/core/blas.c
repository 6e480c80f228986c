/* The BLAS kernel: what OpenBLAS picked, what the CPU deserves, and whether it computes right. */
#include "esmeta/core.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* OpenBLAS's own calls (declared in its cblas.h too, but not by every BLAS's). */
char *openblas_get_corename(void);
char *openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

void esm_blas_get_info(esm_blas_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->core, sizeof out->core, "%s", openblas_get_corename());
    snprintf(out->config, sizeof out->config, "%s", openblas_get_config());
    out->threads = openblas_get_num_threads();
}

void esm_blas_single_thread(void)
{
    openblas_set_num_threads(1);
}

esm_status esm_blas_check_single_thread(esm_err *err)
{
    int n = openblas_get_num_threads();
    if (n == 1)
        return ESM_OK;
    return esm_fail(err, ESM_EUNSUPPORTED, "the BLAS may split each GEMM over %d threads, which would make results "
                    "depend on them; call esm_blas_single_thread() at start-up (the esmeta CLI does)", n);
}

esm_cpu_caps esm_cpu_caps_detect(void)
{
    __builtin_cpu_init();
    esm_cpu_caps c = {
        .avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
        .avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl"),
    };
    return c;
}

/* OpenBLAS's x86-64 kernels that use neither AVX2 nor FMA: what it falls back to for a CPU it
 * does not know (Prescott above all), and the old cores such a fallback may name. */
static const char *const generic_cores[] = {
    "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Nano", "Katmai", "Coppermine", "Northwood",
    "Banias", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Bobcat", "Sandybridge", "Bulldozer", "Unknown",
};

const char *esm_blas_better_core(const char *core, esm_cpu_caps caps)
{
    if (!core || !caps.avx2_fma)
        return NULL;
    for (size_t i = 0; i < sizeof generic_cores / sizeof *generic_cores; i++)
        if (!strcasecmp(core, generic_cores[i]))
            return caps.avx512 ? "SkylakeX" : "Haswell";
    return NULL;
}

/* One GEMM of the model's kind against a double reference; returns the worst error relative to
 * sum |a||b| of its dot product (so rounding of any correct order stays far below the limit). */
static double gemm_error(int ta, int tb, int m, int n, int k, const float *a, const float *b, float *c)
{
    enum CBLAS_TRANSPOSE at = ta ? CblasTrans : CblasNoTrans, bt = tb ? CblasTrans : CblasNoTrans;
    int lda = ta ? m : k, ldb = tb ? k : n;
    cblas_sgemm(CblasRowMajor, at, bt, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0, mag = 0;
            for (int q = 0; q < k; q++) {
                double x = ta ? a[(size_t)q * m + i] : a[(size_t)i * k + q];
                double y = tb ? b[(size_t)j * k + q] : b[(size_t)q * n + j];
                s += x * y, mag += fabs(x * y);
            }
            double e = fabs(c[(size_t)i * n + j] - s) / (mag > 0 ? mag : 1);
            if (!(e <= worst)) /* also catches NaN */
                worst = isnan(e) ? INFINITY : e;
        }
    return worst;
}

esm_status esm_blas_selfcheck(esm_err *err)
{
    /* conv forward out (cout, hw) = W (cout, cin*9) @ col; input gradient dcol = W^T @ dz;
     * weight gradient dW = dz @ col^T: cout 64, cin 16, one 14x14 image, and a 4-image group
     * of 7x7 (196 columns) with a ragged width */
    static const struct { int ta, tb, m, n, k; const char *what; } shapes[] = {
        {0, 0, 64, 196, 144, "conv forward"},
        {1, 0, 144, 196, 64, "conv input gradient"},
        {0, 1, 64, 144, 196, "conv weight gradient"},
        {0, 0, 48, 147, 432, "conv forward, grouped"},
    };
    enum { A_MAX = 64 * 432, B_MAX = 432 * 196, C_MAX = 144 * 196 }; /* the largest of each operand above */
    float *a = malloc(((size_t)A_MAX + B_MAX + C_MAX) * sizeof(float));
    if (!a)
        return esm_fail(err, ESM_ENOMEM, "BLAS check: out of memory");
    float *b = a + A_MAX, *c = b + B_MAX;
    esm_stream s = esm_stream_make(0xb1a5, 0, 0, 0);
    for (size_t i = 0; i < (size_t)A_MAX + B_MAX; i++)
        a[i] = 2.0f * esm_stream_uniform(&s) - 1.0f;
    esm_blas_info info;
    esm_blas_get_info(&info);
    esm_status st = ESM_OK;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes && st == ESM_OK; i++) {
        double e = gemm_error(shapes[i].ta, shapes[i].tb, shapes[i].m, shapes[i].n, shapes[i].k, a, b, c);
        /* float rounding of a k-term sum is below k * 2^-24 ~ 3e-5 of sum|a||b|; 1e-3 is a wrong result */
        if (!(e < 1e-3))
            st = esm_fail(err, ESM_EUNSUPPORTED, "the BLAS kernel %s computes wrong SGEMM results on this CPU (%s "
                          "%dx%dx%d: error %.2g of the magnitude); set OPENBLAS_CORETYPE to another kernel "
                          "(e.g. Haswell, or Prescott for any x86-64) and rerun", info.core, shapes[i].what,
                          shapes[i].m, shapes[i].n, shapes[i].k, e);
    }
    free(a);
    return st;
}
