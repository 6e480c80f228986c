/* A broken BLAS for one test: preloaded, its cblas_sgemm stands in for the real one and adds a
 * small error to every result, as a miscompiled kernel would. */
#include <cblas.h>

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint m, const blasint n, const blasint k, const float alpha, const float *a,
                 const blasint lda, const float *b, const blasint ldb, const float beta, float *c, const blasint ldc)
{
    (void)order, (void)ta, (void)tb, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta;
    for (blasint i = 0; i < m; i++)
        for (blasint j = 0; j < n; j++)
            c[(long)i * ldc + j] = 0.5f;
}
