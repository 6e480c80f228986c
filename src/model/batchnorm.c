/* Batch normalisation over (n, hw) per channel, PyTorch semantics: batch statistics use the
 * biased variance; eps 1e-5. The affine part (gamma, beta) is fused into the ReLU + pool
 * pass (relu_pool.c), so these functions only normalise. Sums are in double because a
 * channel spans up to n*h*w ~ 5e5 values. */
#include "esmeta/model.h"

#include <math.h>

void esm_batchnorm_normalize_batch(float *z, int n, int c, int hw, float *mean, float *invstd, float *batch_var)
{
    double m = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            const float *p = z + ((size_t)i * c + ch) * hw;
            for (int q = 0; q < hw; q++)
                s += p[q];
        }
        double mu = s / m, ss = 0.0;
        /* Two passes: the centred sum of squares does not cancel catastrophically. */
        for (int i = 0; i < n; i++) {
            const float *p = z + ((size_t)i * c + ch) * hw;
            for (int q = 0; q < hw; q++) {
                double d = p[q] - mu;
                ss += d * d;
            }
        }
        double var = ss / m;
        float fm = (float)mu, fis = (float)(1.0 / sqrt(var + ESM_BN_EPS));
        for (int i = 0; i < n; i++) {
            float *p = z + ((size_t)i * c + ch) * hw;
            for (int q = 0; q < hw; q++)
                p[q] = (p[q] - fm) * fis;
        }
        mean[ch] = fm;
        invstd[ch] = fis;
        if (batch_var)
            batch_var[ch] = (float)var;
    }
}

void esm_batchnorm_normalize_with(float *z, int n, int c, int hw, const float *mean, const float *var)
{
    for (int ch = 0; ch < c; ch++) {
        float fm = mean[ch], fis = (float)(1.0 / sqrt((double)var[ch] + ESM_BN_EPS));
        for (int i = 0; i < n; i++) {
            float *p = z + ((size_t)i * c + ch) * hw;
            for (int q = 0; q < hw; q++)
                p[q] = (p[q] - fm) * fis;
        }
    }
}

/* With y = gamma*xhat + beta and M = n*hw values per channel:
 * dz = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)). */
void esm_batchnorm_backward(const float *xhat, const float *gamma, const float *invstd, int n, int c, int hw,
                            float *d, float *d_gamma, float *d_beta)
{
    double m = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0.0, sdyx = 0.0;
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * c + ch) * hw;
            for (int q = 0; q < hw; q++) {
                sdy += d[o + q];
                sdyx += (double)d[o + q] * xhat[o + q];
            }
        }
        d_gamma[ch] = (float)sdyx;
        d_beta[ch] = (float)sdy;
        float k = gamma[ch] * invstd[ch];
        float mdy = (float)(sdy / m), mdyx = (float)(sdyx / m);
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * c + ch) * hw;
            for (int q = 0; q < hw; q++)
                d[o + q] = k * (d[o + q] - mdy - xhat[o + q] * mdyx);
        }
    }
}
