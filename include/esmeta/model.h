/* esmeta model: the conv-4 embedding network of Prototypical Networks (Snell et al. 2017).
 *
 * A net is `depth` blocks of   conv 3x3 (pad 1, bias) -> batch norm (affine) -> ReLU -> max-pool 2x2
 * on (C, H, W) images; the embedding is the last block's output flattened (channel-major,
 * like PyTorch's x.view(n, -1)). With the default config (1x28x28, 4 blocks of 64) that is
 * 28 -> 14 -> 7 -> 3 -> 1, a 64-d embedding and 111,936 trainable parameters.
 *
 * The net holds shapes only. Trainable parameters live in ONE contiguous float vector that
 * the caller owns and passes to every call, so evolution strategies can evaluate perturbed
 * copies concurrently. Its layout, block after block (b = 0 .. depth-1):
 *     conv weight  (Cout, Cin, 3, 3)   Cin = in_channels for b = 0, else width; Cout = width
 *     conv bias    (Cout)
 *     bn gamma     (Cout)
 *     bn beta      (Cout)
 * which is PyTorch's parameters() order for Sequential(Conv2d, BatchNorm2d, ReLU, MaxPool2d)*.
 * Batch-norm running statistics are a second vector (not trained), block after block:
 *     running mean (Cout), running var (Cout).
 *
 * All scratch memory of a call lives in a caller-owned workspace (esm_net_ws), so forward
 * and backward are re-entrant: threads may run concurrently with distinct workspaces (and
 * distinct or shared read-only parameter vectors). The convolutions call cblas_sgemm; the
 * library never changes BLAS threading, so a caller running one net per thread should make
 * BLAS single-threaded itself (openblas_set_num_threads(1)). */
#ifndef ESMETA_MODEL_H
#define ESMETA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ESM_NET_MAX_DEPTH 16

/* PyTorch's BatchNorm2d defaults. */
#define ESM_BN_EPS 1e-5f
#define ESM_BN_MOMENTUM 0.1f

typedef struct {
    int in_channels, in_height, in_width; /* of one input image */
    int width;                            /* output channels of every conv */
    int depth;                            /* number of blocks */
} esm_net_config;

/* 1x28x28 input, 4 blocks of 64 channels. */
esm_net_config esm_net_config_default(void);

/* Where one block's pieces sit; shapes are per image. */
typedef struct {
    int cin, cout;
    int h, w;           /* input (and conv output) height and width */
    int ho, wo;         /* after the 2x2 floor max-pool: h/2, w/2 */
    size_t w_off;       /* conv weight (cout, cin, 3, 3) in params */
    size_t b_off;       /* conv bias (cout) */
    size_t gamma_off;   /* bn gamma (cout) */
    size_t beta_off;    /* bn beta (cout) */
    size_t mean_off;    /* running mean (cout) in the bn buffer */
    size_t var_off;     /* running var (cout) in the bn buffer */
} esm_block;

/* Shapes and offsets only; a plain value, safe to share read-only between threads. */
typedef struct {
    esm_net_config cfg;
    esm_block block[ESM_NET_MAX_DEPTH];
    size_t n_params;    /* length of the parameter vector */
    size_t n_bn;        /* length of the running-statistics vector */
    int emb_dim;        /* width * ho * wo of the last block */
    int in_size;        /* in_channels * in_height * in_width */
} esm_net;

/* Fails (ESM_EINVAL) on non-positive sizes, depth over ESM_NET_MAX_DEPTH, or an input so
 * small that some block would pool to nothing. */
esm_status esm_net_init(esm_net *net, const esm_net_config *cfg, esm_err *err);

/* PyTorch's default initialisation, a pure function of seed (Philox stream):
 * conv weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = Cin*9 (which is
 * kaiming_uniform_ with a = sqrt(5)), gamma = 1, beta = 0; running mean 0, var 1.
 * bn_running may be NULL. */
void esm_net_init_params(const esm_net *net, uint64_t seed, float *params, float *bn_running);

typedef enum {
    ESM_BN_TRAIN,       /* batch statistics; updates bn_running if given (PyTorch train()) */
    ESM_BN_BATCH,       /* batch statistics; never touches bn_running */
    ESM_BN_EVAL         /* running statistics (PyTorch eval()); bn_running required */
} esm_bn_mode;

/* Scratch for a batch of at most max_n images. A workspace made with_backward keeps every
 * block's activations so esm_net_backward can follow a forward; without it the workspace
 * holds only what forward needs (much smaller: use that for evaluation and ES). */
typedef struct esm_net_ws esm_net_ws;

esm_status esm_net_ws_create(const esm_net *net, int max_n, int with_backward, esm_net_ws **out, esm_err *err);
void esm_net_ws_free(esm_net_ws *ws);
/* Lets esm_net_forward/backward split a batch over up to `threads` OpenMP threads (default 1;
 * inside another parallel region they run on the calling thread alone). Images are split in
 * fixed partitions and partial sums are added in a fixed order, so the results are the same
 * bits for any thread count. Adds (threads - 1) conv scratch buffers. */
esm_status esm_net_ws_set_threads(esm_net_ws *ws, int threads, esm_err *err);
/* Bytes a workspace would take, to plan thread counts. */
size_t esm_net_ws_bytes(const esm_net *net, int max_n, int with_backward);

/* x is (n, C, H, W); emb is (n, emb_dim). Batch statistics work for any n >= 1 since every
 * block sees at least 2x2 values per image. */
esm_status esm_net_forward(const esm_net *net, const float *params, float *bn_running, esm_net_ws *ws,
                           const float *x, int n, esm_bn_mode mode, float *emb, esm_err *err);

/* ---- sharing block 0's lowered input ----
 * Block 0's conv rearranges its input (into padded planes: two zero rows per image) before it
 * convolves, and its batch statistics come from sums of its input (tap moments, one set per image,
 * when it has at most 3 input channels); forwards of many parameter vectors over the same images
 * (ES members on one episode) can make both once.
 * esm_net_lower_input writes images first..first+count-1 of a batch of n (x points at image
 * first) into cols, esm_net_lowered_floats(net, n) floats for the whole batch: call it once or
 * piece by piece. esm_net_forward_lowered is esm_net_forward with block 0 reading cols (bit-identical
 * results); cols must be the lowering of the same n images. x may then be NULL unless the
 * workspace keeps activations for backward. cols is only read: threads may share it. It holds
 * doubles: allocate it as malloc does (8-byte aligned). esm_net_lower_input allocates a small
 * scratch (ESM_ENOMEM if it cannot). */
size_t esm_net_lowered_floats(const esm_net *net, int n);
esm_status esm_net_lower_input(const esm_net *net, const float *x, int first, int count, int n, float *cols,
                               esm_err *err);
esm_status esm_net_forward_lowered(const esm_net *net, const float *params, float *bn_running, esm_net_ws *ws,
                                   const float *x, const float *cols, int n, esm_bn_mode mode, float *emb,
                                   esm_err *err);

/* Gradient of a scalar loss w.r.t. params, given d_emb = dloss/d(emb) (n, emb_dim) for the
 * last forward on ws, which must have been a batch-statistics forward on a with_backward
 * workspace with the same params. grad (n_params) is overwritten. */
esm_status esm_net_backward(const esm_net *net, const float *params, esm_net_ws *ws, const float *d_emb,
                            float *grad, esm_err *err);

/* ---- streaming: batch statistics over a batch too large for one workspace ----
 * The batch is fed chunk by chunk (esm_protonet_loss_stream drives this). fold is (depth, 2, width):
 * block b's batch norm folded into y = scale*z + shift (esm_batchnorm_fold), scale at
 * fold + 2*b*width and shift at fold + (2*b+1)*width. Runs the first `blocks` blocks over the chunk
 * x (n images, n <= the workspace's max batch) with that fold. If blocks < depth it then runs block
 * `blocks`'s conv and adds the moments of its output (without the bias, as esm_net_forward takes
 * them) to acc (3*width doubles, esm_batchnorm_moments_add's layout), and out is unused; if
 * blocks == depth, out gets the embeddings (n, emb_dim). Never touches running statistics; the
 * workspace is left unfit for esm_net_backward. */
esm_status esm_net_forward_chunk(const esm_net *net, const float *params, const float *fold, int blocks,
                                 esm_net_ws *ws, const float *x, int n, double *acc, float *out, esm_err *err);

/* ---- single layers, exposed for tests and benchmarks ----
 * All are per batch, NCHW, no allocation. */

/* Floats of scratch the conv layer needs (forward and backward alike). */
size_t esm_conv3x3_scratch(int cin, int cout, int h, int w);
/* inp (n,cin,h,w), wgt (cout,cin,3,3), bias (cout, or NULL for none) -> out (n,cout,h,w) */
void esm_conv3x3_forward(const float *inp, const float *wgt, const float *bias, int n, int cin, int cout,
                         int h, int w, float *scratch, float *out);
/* d_out (n,cout,h,w) -> d_wgt (cout,cin,3,3) and d_bias (cout) overwritten; d_inp (n,cin,h,w)
 * overwritten unless NULL. */
void esm_conv3x3_backward(const float *inp, const float *wgt, const float *d_out, int n, int cin, int cout,
                          int h, int w, float *scratch, float *d_inp, float *d_wgt, float *d_bias);

/* Batch statistics of z (n,c,hw): per-channel mean and biased variance (c). */
void esm_batchnorm_stats(const float *z, int n, int c, int hw, float *mean, float *var);
/* The same, streamed: acc (3*c doubles: count, mean, M2 per channel) starts zeroed; add the
 * batch in chunks of whole images (each chunk (n,c,hw)), then read mean and biased variance. */
void esm_batchnorm_moments_add(const float *z, int n, int c, int hw, double *acc);
void esm_batchnorm_moments_get(const double *acc, int c, float *mean, float *var);
/* PyTorch's running update (momentum ESM_BN_MOMENTUM, unbiased variance) from batch statistics
 * mean and (biased) var of m values per channel of a conv output taken without its bias. */
void esm_batchnorm_update_running(float *run_mean, float *run_var, const float *mean, const float *bias,
                                  const float *var, int c, double m);
/* Folds normalisation with (mean, var) and the affine (gamma, beta) into one per-channel map
 * y = scale*z + shift; scale = gamma/sqrt(var + eps), shift = beta - mean*scale. */
void esm_batchnorm_fold(const float *gamma, const float *beta, const float *mean, const float *var, int c,
                        float *scale, float *shift);
/* out = maxpool2x2(relu(scale*z + shift)), floor: z (n,c,h,w) -> out (n,c,h/2,w/2). */
void esm_affine_relu_pool_forward(const float *z, const float *scale, const float *shift, int n, int c, int h,
                                  int w, float *out);
/* d_out (n,c,h/2,w/2) -> d_y (n,c,h,w), the gradient w.r.t. y = scale*z + shift (the pool
 * routes to the first maximum of its window, ReLU masks; rows and columns the floor drops get 0). */
void esm_affine_relu_pool_backward(const float *z, const float *scale, const float *shift, const float *d_out,
                                   int n, int c, int h, int w, float *d_y);
/* Batch-statistics batch norm backward, in place: d (n,c,hw) holds dloss/dy for
 * y = gamma*(z - mean)/sqrt(var + eps) + beta on entry and dloss/dz on return; d_gamma and
 * d_beta (c) are overwritten. mean and var are the batch statistics of z. */
void esm_batchnorm_backward(const float *z, const float *mean, const float *var, const float *gamma, int n, int c,
                            int hw, float *d, float *d_gamma, float *d_beta);

#ifdef __cplusplus
}
#endif
#endif
