/* The workspace of a net (private to src/model). */
#ifndef ESM_MODEL_WS_H
#define ESM_MODEL_WS_H

#include "esmeta/model.h"

struct esm_net_ws {
    esm_net_config cfg; /* of the net it was sized for */
    int max_n, with_backward, depth;
    /* What the last forward left, for backward. */
    int last_n, last_batch_stats;
    /* in[b]: block b's input (n, cin, h, w). in[0] is a copy of x only with_backward;
     * without it all in[b > 0] share one buffer. */
    float *in[ESM_NET_MAX_DEPTH];
    /* z[b]: conv output (n, cout, h, w); shared without backward. */
    float *z[ESM_NET_MAX_DEPTH];
    float *mean, *var;    /* (depth, width) batch statistics of the last forward */
    float *scale, *shift; /* (depth, width) batch norm folded into y = scale*z + shift */
    double *moments;      /* (width, 3) streamed batch statistics */
    double *tap_mom;      /* (max_n, esm_tap_moments_doubles) block 0's input moments, or NULL */
    float *conv_scratch;  /* esm_conv3x3_scratch of the largest block: thread 0's */
    float *seg;           /* (max_n, width, 2) per-image, per-channel partial sums */
    float *bn_coef;       /* (width, 3) batch-norm backward coefficients */
    float *part_grad;     /* (max_parts, part_stride) conv weight+bias gradients per image partition */
    size_t part_stride, scratch_floats;
    int max_parts;
    float *g_big, *g_small; /* backward: d of conv output, d of block input */
    void *mem;
    /* Threads a batch is split over (esm_net_ws_set_threads); scratch of threads 1.. */
    int threads;
    float *thread_scratch;
};

/* Images per partition of a backward pass: each partition sums its own conv weight gradient,
 * and the partitions are added in order, so the bits depend on this constant and never on the
 * thread count. */
#define ESM_NET_PART_IMAGES 32

static inline float *esm_ws_scratch(const struct esm_net_ws *ws, int tid)
{
    return tid == 0 ? ws->conv_scratch : ws->thread_scratch + (size_t)(tid - 1) * ws->scratch_floats;
}

/* Images the conv lowers side by side into one GEMM for h*w pixels (conv.c). */
int esm_conv3x3_group_images(int hw);

/* Batch-norm pieces the whole-net passes run in parallel (batchnorm.c). seg is (n, c, 2). */
void esm_batchnorm_segments(const float *z, int n, int c, int hw, float *seg);
void esm_batchnorm_segments_merge(const float *seg, int n, int c, int hw, double *acc);
void esm_batchnorm_backward_sums(const float *z, const float *mean, const float *d, int n, int c, int hw, float *seg);
/* From the image sums: d_gamma, d_beta and coef (c, 3) for esm_batchnorm_backward_apply. */
void esm_batchnorm_backward_coefs(const float *seg, int n, const float *var, const float *gamma, int c, int hw,
                                  float *d_gamma, float *d_beta, float *coef);
void esm_batchnorm_backward_apply(const float *z, const float *mean, const float *coef, int n, int c, int hw,
                                  float *d);

/* 1 if the two configurations describe the same net. */
int esm_net_config_same(const esm_net_config *a, const esm_net_config *b);
/* Block k's conv (no bias) of inp (n images) into z, in cache-sized runs of images; when moments
 * is not NULL each run's moments are added to it (esm_batchnorm_moments_add) while still in cache.
 * cols, when not NULL, is inp already lowered (esm_net_lower_input; block 0 only): inp is unread. */
void esm_conv_and_moments(const esm_block *k, const float *wgt, const float *inp, const float *cols, int n,
                          double *moments, esm_net_ws *ws, float *z);

/* Batch statistics of a block with at most ESM_TAP_MAX_CIN input channels from its input's tap
 * moments (tap_moments.c). mom is an image's esm_tap_moments_doubles(cin) sums, made by
 * esm_tap_moments_image with esm_tap_moments_scratch(cin, h, w) floats of scratch (8-byte aligned);
 * esm_tap_moments_stats adds n images' in image order and sets moments (cout, 3: count, mean,
 * centred sum of squares, esm_batchnorm_moments_get's layout) of the conv by wgt, without bias. */
#define ESM_TAP_MAX_CIN 3
size_t esm_tap_moments_doubles(int cin);
size_t esm_tap_moments_scratch(int cin, int h, int w);
void esm_tap_moments_image(const float *img, int cin, int h, int w, float *scratch, double *mom);
void esm_tap_moments_stats(const double *mom, int n, int cin, int hw, const float *wgt, int cout, double *moments);

/* Direct conv (conv_direct.c). Block 0's lowered input (esm_net_lower_input) is its images'
 * padded planes: ESM_CONV_SLACK zeros, esm_conv3x3_plane_floats per image, one image after
 * another, ESM_CONV_SLACK zeros (esm_conv3x3_planes_slack). */
enum { ESM_CONV_PLAIN, ESM_CONV_AVX2, ESM_CONV_AVX512 };
#define ESM_CONV_SLACK 16
/* The best variant this CPU runs (the forward always uses it; tests try the others). */
int esm_conv3x3_direct_variant(void);
size_t esm_conv3x3_plane_floats(int cin, int h, int w);
size_t esm_conv3x3_direct_scratch(int cin, int cout, int h, int w);
/* inp is (cin, h, w), one image; planes is (cin, h+2, w). */
void esm_conv3x3_planes(const float *inp, int cin, int h, int w, float *planes);
void esm_conv3x3_planes_slack(float *end);
/* out (n, cout, h, w) = conv of inp (n, cin, h, w) + bias (NULL: none), or of the images' padded
 * planes when planes is not NULL (inp then unread; ESM_CONV_SLACK floats before the first image's
 * and after the last one's are read). scratch: esm_conv3x3_direct_scratch floats. */
void esm_conv3x3_direct(int variant, const float *inp, const float *planes, const float *wgt, const float *bias,
                        int n, int cin, int cout, int h, int w, float *scratch, float *out);

#endif
