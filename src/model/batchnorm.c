/* Batch normalisation over (n, hw) per channel with PyTorch's semantics: batch statistics use
 * the biased variance; eps 1e-5. Normalisation is never materialised: it is folded with the
 * affine part into y = scale*z + shift, which the ReLU + pool pass applies (relu_pool.c).
 * Per-image partial sums are float (short, cache-resident segments); they are combined in
 * double because a channel spans up to n*h*w ~ 5e5 values. */
#include "core/simd.h"
#include "reduce.h"
#include "ws.h"

#include <math.h>

/* Chan et al.'s pairwise update: each image's segment contributes its own mean and centred
 * sum of squares, so one pass over memory is as stable as two. m = (count, mean, M2). The
 * segment sums (seg_stats) are independent per image and may be computed in parallel; the
 * merges run in image order, which fixes the bits. */
ESM_INLINE void seg_stats(const float *p, int hw, float *out)
{
    float seg_mu = esm_sum(p, hw) / (float)hw;
    out[0] = seg_mu;
    out[1] = esm_sum_sq_dev(p, hw, seg_mu);
}

static void merge_segment(double *m, const float *seg, int hw)
{
    double seg_m2 = seg[1];
    double delta = seg[0] - m[1], tot = m[0] + hw;
    m[1] += delta * hw / tot;
    m[2] += seg_m2 + delta * delta * m[0] * hw / tot;
    m[0] = tot;
}

/* seg_stats of four consecutive segments at once: the same operations in the same order for
 * each (the same bits), but four independent chains of additions instead of one, which is what
 * bounds a single segment's speed. The four accumulators are named, not indexed, so that each
 * stays in a register. */
ESM_INLINE float lanes_total(const float *acc, float s)
{
    for (int l = 0; l < ESM_LANES; l++)
        s += acc[l];
    return s;
}

ESM_INLINE void seg_stats4(const float *p, int hw, float *out)
{
    const float *p0 = p, *p1 = p + hw, *p2 = p + 2 * (size_t)hw, *p3 = p + 3 * (size_t)hw;
    float a0[ESM_LANES] = {0}, a1[ESM_LANES] = {0}, a2[ESM_LANES] = {0}, a3[ESM_LANES] = {0};
    int i = 0;
    for (; i + ESM_LANES <= hw; i += ESM_LANES)
        for (int l = 0; l < ESM_LANES; l++) {
            a0[l] += p0[i + l];
            a1[l] += p1[i + l];
            a2[l] += p2[i + l];
            a3[l] += p3[i + l];
        }
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f, t3 = 0.0f;
    for (int j = i; j < hw; j++) {
        t0 += p0[j];
        t1 += p1[j];
        t2 += p2[j];
        t3 += p3[j];
    }
    float m0 = lanes_total(a0, t0) / (float)hw, m1 = lanes_total(a1, t1) / (float)hw;
    float m2 = lanes_total(a2, t2) / (float)hw, m3 = lanes_total(a3, t3) / (float)hw;
    for (int l = 0; l < ESM_LANES; l++)
        a0[l] = a1[l] = a2[l] = a3[l] = 0.0f;
    for (i = 0; i + ESM_LANES <= hw; i += ESM_LANES)
        for (int l = 0; l < ESM_LANES; l++) {
            float d0 = p0[i + l] - m0, d1 = p1[i + l] - m1, d2 = p2[i + l] - m2, d3 = p3[i + l] - m3;
            a0[l] += d0 * d0;
            a1[l] += d1 * d1;
            a2[l] += d2 * d2;
            a3[l] += d3 * d3;
        }
    t0 = t1 = t2 = t3 = 0.0f;
    for (int j = i; j < hw; j++) {
        t0 += (p0[j] - m0) * (p0[j] - m0);
        t1 += (p1[j] - m1) * (p1[j] - m1);
        t2 += (p2[j] - m2) * (p2[j] - m2);
        t3 += (p3[j] - m3) * (p3[j] - m3);
    }
    out[0] = m0, out[2] = m1, out[4] = m2, out[6] = m3;
    out[1] = lanes_total(a0, t0), out[3] = lanes_total(a1, t1);
    out[5] = lanes_total(a2, t2), out[7] = lanes_total(a3, t3);
}

ESM_HOT void esm_batchnorm_segments(const float *z, int n, int c, int hw, float *seg)
{
    size_t q = 0, nq = (size_t)n * c;
    for (; q + 4 <= nq; q += 4)
        seg_stats4(z + q * hw, hw, seg + 2 * q);
    for (; q < nq; q++)
        seg_stats(z + q * hw, hw, seg + 2 * q);
}

void esm_batchnorm_segments_merge(const float *seg, int n, int c, int hw, double *acc)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            merge_segment(acc + 3 * ch, seg + 2 * ((size_t)i * c + ch), hw);
}

void esm_batchnorm_moments_add(const float *z, int n, int c, int hw, double *acc)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            float seg[2];
            seg_stats(z + ((size_t)i * c + ch) * hw, hw, seg);
            merge_segment(acc + 3 * ch, seg, hw);
        }
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
        for (int i = 0; i < n; i++) {
            float seg[2];
            seg_stats(z + ((size_t)i * c + ch) * hw, hw, seg);
            merge_segment(m, seg, hw);
        }
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
 * dz = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)).
 * Three steps: per-image sums (independent, parallel in the net pass), their sum per channel in
 * image order (double), and the elementwise update (independent per image). */
ESM_HOT void esm_batchnorm_backward_sums(const float *z, const float *mean, const float *d, int n, int c, int hw, float *seg)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t q = (size_t)i * c + ch, o = q * hw;
            seg[2 * q] = esm_sum(d + o, hw);                          /* sum(dy) */
            seg[2 * q + 1] = esm_dot_dev(d + o, z + o, hw, mean[ch]); /* sum(dy*(z - mean)) */
        }
}

/* One channel's d_gamma, d_beta and (k, a, b) of dz = k*dy - a - b*(z - mean), from
 * sdy = sum(dy) and sdyz = sum(dy*(z - mean)) over its m = n*hw values. */
static void coefs_from_sums(double sdy, double sdyz, double m, float var, float gamma, float *d_gamma,
                            float *d_beta, float *coef)
{
    float invstd = (float)(1.0 / sqrt((double)var + ESM_BN_EPS));
    double sdyx = sdyz * invstd;
    *d_gamma = (float)sdyx;
    *d_beta = (float)sdy;
    float k = gamma * invstd;
    coef[0] = k;
    coef[1] = (float)(k * sdy / m);
    coef[2] = (float)(k * invstd * sdyx / m);
}

void esm_batchnorm_backward_coefs(const float *seg, int n, const float *var, const float *gamma, int c, int hw,
                                  float *d_gamma, float *d_beta, float *coef)
{
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0.0, sdyz = 0.0;
        for (int i = 0; i < n; i++) {
            sdy += seg[2 * ((size_t)i * c + ch)];
            sdyz += seg[2 * ((size_t)i * c + ch) + 1];
        }
        coefs_from_sums(sdy, sdyz, (double)n * hw, var[ch], gamma[ch], &d_gamma[ch], &d_beta[ch], coef + 3 * ch);
    }
}

ESM_HOT void esm_batchnorm_backward_apply(const float *z, const float *mean, const float *coef, int n, int c, int hw,
                                  float *d)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t o = ((size_t)i * c + ch) * hw;
            float *dp = d + o, k = coef[3 * ch], a = coef[3 * ch + 1], b = coef[3 * ch + 2], mu = mean[ch];
            const float *zp = z + o;
            for (int q = 0; q < hw; q++)
                dp[q] = k * dp[q] - a - b * (zp[q] - mu);
        }
}

/* The single-call form goes channel by channel, so it needs no buffer of image sums; its sums
 * are the same float partials added in the same order as the net pass's. */
void esm_batchnorm_backward(const float *z, const float *mean, const float *var, const float *gamma, int n, int c,
                            int hw, float *d, float *d_gamma, float *d_beta)
{
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0.0, sdyz = 0.0;
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * c + ch) * hw;
            sdy += esm_sum(d + o, hw);
            sdyz += esm_dot_dev(d + o, z + o, hw, mean[ch]);
        }
        float coef[3];
        coefs_from_sums(sdy, sdyz, (double)n * hw, var[ch], gamma[ch], &d_gamma[ch], &d_beta[ch], coef);
        for (int i = 0; i < n; i++) {
            size_t o = ((size_t)i * c + ch) * hw;
            esm_batchnorm_backward_apply(z + o, mean + ch, coef, 1, 1, hw, d + o);
        }
    }
}
