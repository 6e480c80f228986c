/* Batch normalisation over (n, hw) per channel with PyTorch's semantics: batch statistics use
 * the biased variance; eps 1e-5. Normalisation is never materialised: it is folded with the
 * affine part into y = scale*z + shift, which the ReLU + pool pass applies (relu_pool.c).
 * Per-image partial sums are float (short, cache-resident segments); they are combined in
 * double because a channel spans up to n*h*w ~ 5e5 values. */
#include "esmeta/model.h"
#include "reduce.h"

#include <math.h>

/* Chan et al.'s pairwise update: each image's segment contributes its own mean and centred
 * sum of squares, so one pass over memory is as stable as two. m = (count, mean, M2). */
static void merge_segment(double *m, const float *p, int hw)
{
    float seg_mu = esm_sum(p, hw) / (float)hw;
    double seg_m2 = esm_sum_sq_dev(p, hw, seg_mu);
    double delta = seg_mu - m[1], tot = m[0] + hw;
    m[1] += delta * hw / tot;
    m[2] += seg_m2 + delta * delta * m[0] * hw / tot;
    m[0] = tot;
}

void esm_batchnorm_moments_add(const float *z, int n, int c, int hw, double *acc)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            merge_segment(acc + 3 * ch, z + ((size_t)i * c + ch) * hw, hw);
}

void esm_batchnorm_moments_get(const double *acc, int c, float *mean, float *var)
{
    for (int ch = 0; ch < c; ch++) {
        mean[ch] = (float)acc[3 * ch + 1];
        var[ch] = (float)(acc[3 * ch + 2] / acc[3 * ch]);
    }
}

void esm_batchnorm_stats(const float *z, int n, int c, int hw, float *mean, float *var)
{
    for (int ch = 0; ch < c; ch++) {
        double m[3] = {0.0, 0.0, 0.0};
        for (int i = 0; i < n; i++)
            merge_segment(m, z + ((size_t)i * c + ch) * hw, hw);
        esm_batchnorm_moments_get(m, 1, mean + ch, var + ch);
    }
}

void esm_batchnorm_update_running(float *run_mean, float *run_var, const float *mean, const float *bias,
                                  const float *var, int c, double m)
{
    /* PyTorch's: momentum 0.1 and the unbiased variance */
    float unbias = (float)(m / (m - 1.0));
    for (int ch = 0; ch < c; ch++) {
        run_mean[ch] = (1.0f - ESM_BN_MOMENTUM) * run_mean[ch] + ESM_BN_MOMENTUM * (mean[ch] + bias[ch]);
        run_var[ch] = (1.0f - ESM_BN_MOMENTUM) * run_var[ch] + ESM_BN_MOMENTUM * var[ch] * unbias;
    }
}

void esm_batchnorm_fold(const float *gamma, const float *beta, const float *mean, const float *var, int c,
                        float *scale, float *shift)
{
    for (int ch = 0; ch < c; ch++) {
        double s = gamma[ch] / sqrt((double)var[ch] + ESM_BN_EPS);
        scale[ch] = (float)s;
        shift[ch] = (float)(beta[ch] - mean[ch] * s);
    }
}

/* With xhat = (z - mean)*invstd, y = gamma*xhat + beta and M = n*hw values per channel:
 * dz = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)). */
void esm_batchnorm_backward(const float *z, const float *mean, const float *var, const float *gamma, int n, int c,
                            int hw, float *d, float *d_gamma, float *d_beta)
{
    double m = (double)n * hw;
    for (int ch = 0; ch < c; ch++) {
        float mu = mean[ch], invstd = (float)(1.0 / sqrt((double)var[ch] + ESM_BN_EPS));
        double sdy = 0.0, sdyz = 0.0; /* sum(dy), sum(dy*(z - mean)) */
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * c + ch) * hw;
            sdy += esm_sum(d + o, hw);
            sdyz += esm_dot_dev(d + o, z + o, hw, mu);
        }
        double sdyx = sdyz * invstd;
        d_gamma[ch] = (float)sdyx;
        d_beta[ch] = (float)sdy;
        /* dz = k*(dy - mean(dy)) - k*invstd*mean(dy*xhat)*(z - mean) */
        float k = gamma[ch] * invstd;
        float a = (float)(k * sdy / m), b = (float)(k * invstd * sdyx / m);
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * c + ch) * hw;
            float *dp = d + o;
            const float *zp = z + o;
            for (int q = 0; q < hw; q++)
                dp[q] = k * dp[q] - a - b * (zp[q] - mu);
        }
    }
}
