/* The CUDA population evaluator: a whole ES generation on one GPU.
 *
 * For a batch of B members at a time (B sized to the device memory budget) and each of the
 * generation's episodes, everything stays on the device and only B losses and accuracies come
 * back:
 *   1. noise + members   hand-written kernel: Philox4x32-10 + Box-Muller with exactly the host's
 *                        counters (src/core/philox.c), theta = mean + scale * noise. cuRAND is
 *                        NOT used: its Philox generator has its own counter layout and normal
 *                        transform, so it could not reproduce esm_gauss_range; regenerating on
 *                        the device means no P x n_params noise matrix ever crosses PCIe.
 *   2. conv 3x3          im2col (hand-written, trivial gather) + cuBLAS
 *                        cublasSgemmStridedBatched, one batch entry per member. Block 0's input
 *                        is the shared episode, so its im2col is computed once and passed with
 *                        stride 0; later blocks have one im2col per member.
 *   3. batch norm        hand-written: one thread block per (member, channel) reduces the batch
 *                        statistics in double and folds them with gamma/beta exactly as
 *                        esm_batchnorm_fold does (cuDNN is not a dependency, and its batch norm
 *                        cannot take per-member gamma/beta in one call).
 *   4. ReLU + max-pool   hand-written, fused with the folded affine map, like the CPU's
 *                        esm_affine_relu_pool_forward.
 *   5. ProtoNet head     hand-written: one thread block per member; prototypes, double-precision
 *                        squared distances (each once), then the host's own log-sum-exp
 *                        (src/meta/xent_logits.h, compiled for both) and hits in its order.
 *
 * Activations are kept channel-major over the whole episode, (C, N, H, W) per member, so the
 * GEMM output (Cout, N*H*W) is the next layer's input as is and each channel's batch statistics
 * are one contiguous run. As on the CPU, the conv bias is never added in batch-statistics mode:
 * batch norm subtracts the batch mean, so the bias cancels exactly.
 *
 * Precision. Everything is FP32 (with the host's double-precision reductions where the host
 * uses them; cuBLAS in CUBLAS_PEDANTIC_MATH) unless the backend was opened with tf32, which
 * sets cuBLAS's CUBLAS_TF32_TENSOR_OP_MATH for the conv GEMMs. Device code is compiled without fast math and
 * uses __fmul_rn/__fadd_rn where the host computes a*b + c, so nvcc cannot contract it into an
 * FMA the host (x86-64-v2, no FMA) does not do. The noise then differs from the host's only
 * through libm: CUDA's logf is within 1 ulp and sinf/cosf within 2 ulp, against glibc's
 * (nearly) correctly rounded ones, so each standard normal agrees with esm_gauss_range to a
 * relative 1e-6 (about 8 ulp; tests/test_cuda.c checks it). The conv GEMMs sum in a different
 * order than OpenBLAS, so losses agree with the CPU backend to a relative ~1e-5, not bitwise.
 *
 * Plain cudaMalloc memory only (no managed memory); one stream; one cuBLAS handle. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/member.h"
#include "meta/xent_logits.h"
#include "popeval/popeval.h"

#define THREADS 256
/* cuBLAS's own scratch, given to it from the budget (cublasSetWorkspace) instead of left for it to
 * allocate outside it; 32 MiB is what NVIDIA recommends for Hopper, enough for older GPUs too. */
#define BLAS_WORKSPACE ((size_t)32 << 20)

/* ---------------------------------------------------------------- errors */

static esm_status cuda_fail(esm_err *err, cudaError_t e, const char *what)
{
    cudaGetLastError(); /* clear a sticky-free error so the next call starts clean */
    return esm_fail(err, e == cudaErrorMemoryAllocation ? ESM_ENOMEM : ESM_EIO, "cuda: %s failed: %s", what,
                    cudaGetErrorString(e));
}

static const char *cublas_name(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "error";
    }
}

#define CK(call)                                   \
    do {                                           \
        cudaError_t e_ = (call);                   \
        if (e_ != cudaSuccess)                     \
            return cuda_fail(err, e_, #call);      \
    } while (0)

#define CKB(call)                                                                               \
    do {                                                                                        \
        cublasStatus_t s_ = (call);                                                             \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                        \
            return esm_fail(err, ESM_EIO, "cublas: %s failed: %s", #call, cublas_name(s_));     \
    } while (0)

/* Launch errors surface at the next call; checking here names the kernel. */
#define CKL(name) CK(cudaGetLastError())

extern "C" int esm_cuda_device_count(char *why, size_t cap)
{
    int n = 0, rt = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0)
        return n;
    cudaGetLastError();
    cudaRuntimeGetVersion(&rt);
    if (!why || !cap)
        return 0;
    /* cudart reports a missing driver as an "insufficient" one; say what it usually means. */
    if (e == cudaErrorInsufficientDriver)
        snprintf(why, cap, "no NVIDIA driver is loaded, or it is older than CUDA %d.%d", rt / 1000, rt % 1000 / 10);
    else if (e == cudaErrorNoDevice || e == cudaSuccess)
        snprintf(why, cap, "the NVIDIA driver sees no GPU");
    else
        snprintf(why, cap, "CUDA runtime: %s", cudaGetErrorString(e));
    return 0;
}

/* ---------------------------------------------------------------- Philox noise */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define GAUSS_FILL_TAG 0xFFFFFFFFu

/* esm_philox4x32, word for word (the integer arithmetic is exact on both sides). */
__device__ static void philox4x32(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(PHILOX_M0, c[0]), lo0 = PHILOX_M0 * c[0];
        uint32_t hi1 = __umulhi(PHILOX_M1, c[2]), lo1 = PHILOX_M1 * c[2];
        uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0, c[1] = lo1, c[2] = n2, c[3] = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
}

__device__ static float u32_to_open01(uint32_t x)
{
    return __fmul_rn(__fadd_rn((float)(x >> 8), 0.5f), 1.0f / 16777216.0f);
}

/* box_muller of philox.c; logf/sqrtf/cosf/sinf are CUDA's accurate (non-intrinsic) versions. */
__device__ static void box_muller(uint32_t a, uint32_t b, float *z0, float *z1)
{
    const float two_pi = 6.28318530717958647692f;
    float r = sqrtf(__fmul_rn(-2.0f, logf(u32_to_open01(a))));
    float t = __fmul_rn(two_pi, u32_to_open01(b));
    *z0 = __fmul_rn(r, cosf(t));
    *z1 = __fmul_rn(r, sinf(t));
}

/* theta[m][j] = mean[j] + scale[j] * noise(member0 + m)[j] for m < nb, one thread per 4-float
 * Philox block: block index j/4, counter (j/4, gen, pair, 0xFFFFFFFF), key = seed, as in
 * esm_gauss_range; antithetic odd members take minus their pair's noise. */
__global__ static void member_kernel(const float *__restrict__ mean, const float *__restrict__ scale,
                                     float *__restrict__ theta, size_t n, int nb, int member0, int antithetic,
                                     uint32_t k0, uint32_t k1, uint32_t gen)
{
    size_t nblk = (n + 3) / 4, total = nblk * (size_t)nb;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        int m = (int)(i / nblk);
        size_t blk = i % nblk;
        uint32_t member = (uint32_t)(member0 + m);
        uint32_t pair = antithetic ? member / 2 : member;
        uint32_t c[4] = {(uint32_t)blk, gen, pair, GAUSS_FILL_TAG};
        philox4x32(c, k0, k1);
        float g[4];
        box_muller(c[0], c[1], &g[0], &g[1]);
        box_muller(c[2], c[3], &g[2], &g[3]);
        int neg = antithetic && (member & 1);
        float *out = theta + (size_t)m * n;
        for (int q = 0; q < 4; q++) {
            size_t j = blk * 4 + q;
            if (j < n) {
                float z = neg ? -g[q] : g[q];
                out[j] = esm_member_coord(mean[j], scale[j], z);
            }
        }
    }
}

/* ---------------------------------------------------------------- layers */

static int grid_for(size_t total)
{
    size_t g = (total + THREADS - 1) / THREADS;
    return (int)(g < 65535 ? (g > 0 ? g : 1) : 65535);
}

/* in (cin, nimg, h, w) per member, members in_stride apart (0: shared) -> col (cin*9, nimg*h*w)
 * per member, members col_stride apart. Row r = ci*9 + ky*3 + kx holds in[ci, n, y+ky-1, x+kx-1]
 * at column (n*h + y)*w + x, 0 outside the image: the CPU's im2col3x3 with the images side by
 * side. A gather this simple is memory-bound either way; writing it out keeps the GEMM a plain
 * cuBLAS call. */
__global__ static void im2col_kernel(const float *__restrict__ in, size_t in_stride, float *__restrict__ col,
                                     size_t col_stride, int nb, int cin, int nimg, int h, int w)
{
    size_t L = (size_t)nimg * h * w, per = (size_t)cin * 9 * L, total = per * nb;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t m = i / per, rem = i % per;
        int r = (int)(rem / L);
        size_t p = rem % L;
        int x = (int)(p % w), y = (int)((p / w) % h);
        size_t img = p / ((size_t)h * w);
        int ci = r / 9, ky = (r % 9) / 3, kx = r % 3;
        int sy = y + ky - 1, sx = x + kx - 1;
        float v = 0.0f;
        if (sy >= 0 && sy < h && sx >= 0 && sx < w)
            v = in[m * in_stride + (((size_t)ci * nimg + img) * h + sy) * w + sx];
        col[m * col_stride + rem] = v;
    }
}

/* One thread block per (member, channel): batch mean and biased variance of z's L values (in
 * double, two passes), then esm_batchnorm_fold's arithmetic with the member's gamma and beta.
 * Member m's z starts at m*z_stride; scale and shift are packed (nb, cout). */
__global__ static void bn_fold_kernel(const float *__restrict__ z, size_t z_stride, size_t L, int cout,
                                      const float *__restrict__ theta, size_t n_params, size_t gamma_off,
                                      size_t beta_off, float *__restrict__ scale, float *__restrict__ shift)
{
    __shared__ double red[THREADS];
    int m = blockIdx.x / cout, c = blockIdx.x % cout;
    const float *v = z + (size_t)m * z_stride + (size_t)c * L;
    double s = 0.0;
    for (size_t i = threadIdx.x; i < L; i += blockDim.x)
        s += v[i];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k /= 2) {
        if ((int)threadIdx.x < k)
            red[threadIdx.x] += red[threadIdx.x + k];
        __syncthreads();
    }
    double mu = red[0] / (double)L;
    __syncthreads();
    double s2 = 0.0;
    for (size_t i = threadIdx.x; i < L; i += blockDim.x) {
        double d = (double)v[i] - mu;
        s2 += d * d;
    }
    red[threadIdx.x] = s2;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k /= 2) {
        if ((int)threadIdx.x < k)
            red[threadIdx.x] += red[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        float mean = (float)mu, var = (float)(red[0] / (double)L);
        const float *p = theta + (size_t)m * n_params;
        double sc = (double)p[gamma_off + c] / sqrt((double)var + (double)ESM_BN_EPS);
        scale[blockIdx.x] = (float)sc;
        shift[blockIdx.x] = (float)((double)p[beta_off + c] - (double)mean * sc);
    }
}

/* out (c, nimg, h/2, w/2) per member = maxpool2x2(relu(scale*z + shift)), floor pooling, with
 * esm_affine_relu_pool_forward's comparisons (so NaN propagates the same way). Member m's z
 * starts at m*z_stride, its output at m*out_stride; scale and shift are packed (nb, c). */
__global__ static void relu_pool_kernel(const float *__restrict__ z, size_t z_stride,
                                        const float *__restrict__ scale, const float *__restrict__ shift,
                                        float *__restrict__ out, size_t out_stride, int nb, int c, int nimg, int h,
                                        int w)
{
    int ho = h / 2, wo = w / 2;
    size_t per_ch = (size_t)nimg * ho * wo, total = per_ch * c * nb;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t mc = i / per_ch, rem = i % per_ch; /* mc = m*c + ch */
        size_t m = mc / c, ch = mc % c;
        int ox = (int)(rem % wo), oy = (int)((rem / wo) % ho);
        size_t img = rem / ((size_t)ho * wo);
        const float *r0 = z + m * z_stride + ch * nimg * h * w + (img * h + 2 * oy) * w + 2 * ox, *r1 = r0 + w;
        float g = scale[mc], b = shift[mc];
        float a0 = __fadd_rn(__fmul_rn(g, r0[0]), b), a1 = __fadd_rn(__fmul_rn(g, r0[1]), b);
        float a2 = __fadd_rn(__fmul_rn(g, r1[0]), b), a3 = __fadd_rn(__fmul_rn(g, r1[1]), b);
        float m01 = a0 > a1 ? a0 : a1, m23 = a2 > a3 ? a2 : a3;
        float mx = m01 > m23 ? m01 : m23;
        /* Non-finite activations carried on as NaN, as on the CPU (relu_pool.c). */
        float bad = __fsub_rn(a0, a0) + __fsub_rn(a1, a1) + __fsub_rn(a2, a2) + __fsub_rn(a3, a3);
        out[m * out_stride + ch * per_ch + rem] = (mx > 0.0f ? mx : 0.0f) + bad;
    }
}

/* Embedding element d of image n of member m: the last block's output is (c, nimg, P) per member
 * and the CPU flattens each image channel-major, d = ch*P + p. */
__device__ static float emb_at(const float *act, int nimg, int P, int n, int d)
{
    return act[((size_t)(d / P) * nimg + n) * P + d % P];
}

__device__ static double sqdist(const float *act, const float *proto, int nimg, int P, int q, int dim)
{
    double s = 0.0;
    for (int d = 0; d < dim; d++) {
        double t = (double)emb_at(act, nimg, P, q, d) - proto[d];
        s += t * t;
    }
    return s;
}

/* One thread block per member: esm_protonet_head's loss and accuracy, same operation order
 * (prototype sums in float, distances in double, then src/meta/xent_logits.h, the host's own
 * log-sum-exp, on each query's row of logits, each distance computed once; query losses summed
 * in query order). Non-finite loss -> NaN loss and accuracy, as the CPU trainer records an
 * ESM_ENONFINITE episode. */
__global__ static void head_kernel(const float *__restrict__ act, size_t act_stride, int nimg, int P, int dim,
                                   const int *__restrict__ labels, int way, int shot, int nq,
                                   float *__restrict__ proto_all, float *__restrict__ logit_all,
                                   double *__restrict__ qloss_all, int *__restrict__ qhit_all,
                                   float *__restrict__ loss, float *__restrict__ acc)
{
    int m = blockIdx.x;
    const float *a = act + (size_t)m * act_stride;
    float *proto = proto_all + (size_t)m * way * dim;
    double *qloss = qloss_all + (size_t)m * nq;
    int *qhit = qhit_all + (size_t)m * nq;
    for (int i = threadIdx.x; i < way * dim; i += blockDim.x) {
        int c = i / dim, d = i % dim;
        float p = 0.0f;
        for (int s = 0; s < shot; s++)
            p = __fadd_rn(p, emb_at(a, nimg, P, c * shot + s, d));
        proto[i] = __fdiv_rn(p, (float)shot);
    }
    __syncthreads();
    int ns = way * shot;
    for (int q = threadIdx.x; q < nq; q += blockDim.x) {
        float *row = logit_all + ((size_t)m * nq + q) * way;
        int label = labels[q];
        esm_xent_acc x = esm_xent_start();
        for (int c = 0; c < way; c++)
            esm_xent_take(&x, row, c, -sqdist(a, proto + (size_t)c * dim, nimg, P, ns + q, dim), label);
        qloss[q] = esm_xent_lse(&x, row, way) - x.label;
        qhit[q] = x.best == label;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        int hits = 0;
        for (int q = 0; q < nq; q++)
            total += qloss[q], hits += qhit[q];
        int ok = isfinite(total);
        loss[m] = ok ? (float)(total / nq) : NAN;
        acc[m] = ok ? __fdiv_rn((float)hits, (float)nq) : NAN;
    }
}

/* ---------------------------------------------------------------- the backend */

typedef struct {
    esm_net net;
    esm_episode_shape shape;
    int nimg, nq, batch, tf32;
    size_t col_floats, z_floats, act_floats; /* per member, the largest over blocks */
    cublasHandle_t blas;
    cudaStream_t stream;
    void *blas_ws;
    float *mean, *scale, *theta, *col0, *col, *z, *act, *bn_scale, *bn_shift, *proto, *logit, *loss, *acc;
    double *qloss;
    int *qhit;
    float *x;      /* (n_eps_cap, Cin, nimg, H, W) the generation's episodes, channel-major */
    int *labels;   /* (n_eps_cap, nq) */
    int n_eps_cap;
    float *h_x, *h_loss, *h_acc;
    float *h_scale; /* the scales on the device, to upload them only when they change */
    int scale_valid;
    int *h_labels;
    double *h_ls, *h_as;
    int h_cap;
    int device; /* the GPU this evaluator lives on (opts->device_index modulo the device count) */
} cuda_eval;

static void cuda_free_impl(void *impl)
{
    cuda_eval *c = (cuda_eval *)impl;
    if (!c)
        return;
    cudaSetDevice(c->device);
    void *dev[] = {c->blas_ws, c->mean, c->scale, c->theta, c->col0, c->col, c->z, c->act, c->bn_scale, c->bn_shift,
                   c->proto, c->logit, c->loss, c->acc, c->qloss, c->qhit, c->x, c->labels};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i])
            cudaFree(dev[i]);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c->h_x), free(c->h_loss), free(c->h_acc), free(c->h_labels), free(c->h_ls), free(c->h_as);
    free(c->h_scale);
    free(c);
}

/* Device bytes one member of a batch needs. */
static size_t member_bytes(const cuda_eval *c)
{
    const esm_net *net = &c->net;
    size_t floats = net->n_params + c->col_floats + c->z_floats + c->act_floats + 2 * (size_t)net->cfg.width +
                    (size_t)c->shape.way * net->emb_dim + (size_t)c->nq * c->shape.way + 2;
    return floats * sizeof(float) + (size_t)c->nq * (sizeof(double) + sizeof(int));
}

static esm_status cuda_setup(cuda_eval *c, const esm_net *net, esm_episode_shape shape, int max_members,
                             const esm_popeval_opts *opts, esm_err *err)
{
    c->net = *net;
    c->shape = shape;
    c->nq = shape.way * shape.query;
    c->nimg = shape.way * shape.shot + c->nq;
    c->tf32 = opts && opts->tf32;
    for (int b = 0; b < net->cfg.depth; b++) {
        const esm_block *k = &net->block[b];
        size_t L = (size_t)c->nimg * k->h * k->w;
        if (b > 0 && (size_t)k->cin * 9 * L > c->col_floats)
            c->col_floats = (size_t)k->cin * 9 * L;
        if ((size_t)k->cout * L > c->z_floats)
            c->z_floats = (size_t)k->cout * L;
        if ((size_t)k->cout * c->nimg * k->ho * k->wo > c->act_floats)
            c->act_floats = (size_t)k->cout * c->nimg * k->ho * k->wo;
    }
    int n_dev = esm_cuda_device_count(NULL, 0);
    c->device = n_dev > 0 && opts ? opts->device_index % n_dev : 0;
    CK(cudaSetDevice(c->device));
    size_t free_b = 0, total_b = 0;
    CK(cudaMemGetInfo(&free_b, &total_b));
    const esm_block *k0 = &net->block[0];
    size_t fixed = (2 * net->n_params + (size_t)k0->cin * 9 * c->nimg * k0->h * k0->w) * sizeof(float) +
                   BLAS_WORKSPACE;
    size_t budget = opts && opts->mem_budget ? opts->mem_budget : free_b / 4 * 3;
    size_t per = member_bytes(c);
    if (budget <= fixed || (budget - fixed) / per < 1)
        return esm_fail(err, ESM_ENOMEM, "cuda evaluator: one member of a %d-image episode needs %.1f MiB of device "
                        "memory but the budget is %.1f MiB (free %.1f MiB)", c->nimg, (double)(per + fixed) / 1048576,
                        (double)budget / 1048576, (double)free_b / 1048576);
    size_t fit = (budget - fixed) / per;
    c->batch = fit < (size_t)max_members ? (int)fit : max_members;
    size_t B = (size_t)c->batch, W = (size_t)net->cfg.width;
    CK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CKB(cublasCreate(&c->blas));
    CKB(cublasSetStream(c->blas, c->stream));
    CK(cudaMalloc(&c->blas_ws, BLAS_WORKSPACE));
    CKB(cublasSetWorkspace(c->blas, c->blas_ws, BLAS_WORKSPACE));
    /* FP32 is the reference, and pedantic so that NVIDIA_TF32_OVERRIDE cannot turn it into TF32
     * behind the caller's back (CUBLAS_DEFAULT_MATH lets it). TF32 rounds the GEMM inputs to
     * 10-bit mantissas on tensor cores, only for --device cuda-tf32. */
    CKB(cublasSetMathMode(c->blas, c->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    CK(cudaMalloc((void **)&c->mean, net->n_params * sizeof(float)));
    CK(cudaMalloc((void **)&c->scale, net->n_params * sizeof(float)));
    CK(cudaMalloc((void **)&c->theta, B * net->n_params * sizeof(float)));
    CK(cudaMalloc((void **)&c->col0, (size_t)k0->cin * 9 * c->nimg * k0->h * k0->w * sizeof(float)));
    CK(cudaMalloc((void **)&c->col, (B * c->col_floats > 0 ? B * c->col_floats : 1) * sizeof(float)));
    CK(cudaMalloc((void **)&c->z, B * c->z_floats * sizeof(float)));
    CK(cudaMalloc((void **)&c->act, B * c->act_floats * sizeof(float)));
    CK(cudaMalloc((void **)&c->bn_scale, B * W * sizeof(float)));
    CK(cudaMalloc((void **)&c->bn_shift, B * W * sizeof(float)));
    CK(cudaMalloc((void **)&c->proto, B * shape.way * net->emb_dim * sizeof(float)));
    CK(cudaMalloc((void **)&c->logit, B * c->nq * shape.way * sizeof(float)));
    CK(cudaMalloc((void **)&c->loss, B * sizeof(float)));
    CK(cudaMalloc((void **)&c->acc, B * sizeof(float)));
    CK(cudaMalloc((void **)&c->qloss, B * c->nq * sizeof(double)));
    CK(cudaMalloc((void **)&c->qhit, B * c->nq * sizeof(int)));
    c->h_loss = (float *)malloc(B * sizeof(float));
    c->h_acc = (float *)malloc(B * sizeof(float));
    c->h_scale = (float *)malloc(net->n_params * sizeof(float));
    if (!c->h_loss || !c->h_acc || !c->h_scale)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    return ESM_OK;
}

static esm_status cuda_create(const esm_net *net, esm_episode_shape shape, int max_members,
                              const esm_popeval_opts *opts, void **impl, esm_err *err)
{
    *impl = NULL;
    if (max_members < 1)
        return esm_fail(err, ESM_EINVAL, "cuda evaluator: max_members %d must be positive", max_members);
    cuda_eval *c = (cuda_eval *)calloc(1, sizeof *c);
    if (!c)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    esm_status st = cuda_setup(c, net, shape, max_members, opts, err);
    if (st != ESM_OK)
        cuda_free_impl(c);
    else
        *impl = c;
    return st;
}

/* Uploads the episodes, support then query, transposed to (Cin, nimg, H, W). */
static esm_status upload_episodes(cuda_eval *c, const esm_popeval_job *job, esm_err *err)
{
    const esm_net *net = &c->net;
    int cin = net->cfg.in_channels, ns = c->shape.way * c->shape.shot;
    size_t hw = (size_t)net->cfg.in_height * net->cfg.in_width, img = (size_t)net->in_size;
    size_t per_ep = (size_t)c->nimg * img;
    if (job->n_eps > c->n_eps_cap) {
        if (c->x)
            cudaFree(c->x), c->x = NULL;
        if (c->labels)
            cudaFree(c->labels), c->labels = NULL;
        free(c->h_x), free(c->h_labels);
        c->h_x = (float *)malloc(per_ep * job->n_eps * sizeof(float));
        c->h_labels = (int *)malloc((size_t)c->nq * job->n_eps * sizeof(int));
        if (!c->h_x || !c->h_labels) {
            c->n_eps_cap = 0;
            return esm_fail(err, ESM_ENOMEM, "out of memory for %d episodes", job->n_eps);
        }
        c->n_eps_cap = 0;
        CK(cudaMalloc((void **)&c->x, per_ep * job->n_eps * sizeof(float)));
        CK(cudaMalloc((void **)&c->labels, (size_t)c->nq * job->n_eps * sizeof(int)));
        c->n_eps_cap = job->n_eps;
    }
    for (int j = 0; j < job->n_eps; j++) {
        const esm_episode *ep = &job->eps[j];
        float *dst = c->h_x + (size_t)j * per_ep;
        for (int n = 0; n < c->nimg; n++) {
            const float *src = n < ns ? ep->support + (size_t)n * img : ep->query + (size_t)(n - ns) * img;
            for (int ch = 0; ch < cin; ch++)
                memcpy(dst + ((size_t)ch * c->nimg + n) * hw, src + ch * hw, hw * sizeof(float));
        }
        memcpy(c->h_labels + (size_t)j * c->nq, ep->query_label, (size_t)c->nq * sizeof(int));
    }
    CK(cudaMemcpyAsync(c->x, c->h_x, per_ep * job->n_eps * sizeof(float), cudaMemcpyHostToDevice, c->stream));
    CK(cudaMemcpyAsync(c->labels, c->h_labels, (size_t)c->nq * job->n_eps * sizeof(int), cudaMemcpyHostToDevice,
                       c->stream));
    return ESM_OK;
}

/* The conv-4 forward and head of nb members on episode j; losses and accuracies land in
 * c->loss and c->acc. */
static esm_status forward_episode(cuda_eval *c, int nb, int j, esm_err *err)
{
    const esm_net *net = &c->net;
    size_t per_ep = (size_t)c->nimg * net->in_size;
    const float *x = c->x + (size_t)j * per_ep;
    const float one = 1.0f, zero = 0.0f;
    for (int b = 0; b < net->cfg.depth; b++) {
        const esm_block *k = &net->block[b];
        int L = c->nimg * k->h * k->w, K = k->cin * 9;
        const float *col;
        long long col_stride;
        if (b == 0) {
            /* The episode is the same for every member: one im2col, read with stride 0. */
            im2col_kernel<<<grid_for((size_t)K * L), THREADS, 0, c->stream>>>(x, 0, c->col0, 0, 1, k->cin, c->nimg,
                                                                              k->h, k->w);
            CKL("im2col");
            col = c->col0, col_stride = 0;
        } else {
            im2col_kernel<<<grid_for((size_t)nb * K * L), THREADS, 0, c->stream>>>(
                c->act, c->act_floats, c->col, c->col_floats, nb, k->cin, c->nimg, k->h, k->w);
            CKL("im2col");
            col = c->col, col_stride = (long long)c->col_floats;
        }
        /* Row-major z (cout, L) = W (cout, K) @ col (K, L) is column-major z^T (L x cout) =
         * col^T (L x K) @ W^T (K x cout): no transposes, lda = L, ldb = K, ldc = L. Member m's
         * weights sit at theta + m*n_params + w_off. cuBLAS: the GEMMs are where the FLOPs are,
         * and its strided-batched SGEMM runs all members in one launch. */
        CKB(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, L, k->cout, K, &one, col, L, col_stride,
                                      c->theta + k->w_off, K, (long long)net->n_params, &zero, c->z, L,
                                      (long long)c->z_floats, nb));
        bn_fold_kernel<<<nb * k->cout, THREADS, 0, c->stream>>>(c->z, c->z_floats, (size_t)L, k->cout, c->theta,
                                                                net->n_params, k->gamma_off, k->beta_off,
                                                                c->bn_scale, c->bn_shift);
        CKL("bn_fold");
        relu_pool_kernel<<<grid_for((size_t)nb * k->cout * c->nimg * k->ho * k->wo), THREADS, 0, c->stream>>>(
            c->z, c->z_floats, c->bn_scale, c->bn_shift, c->act, c->act_floats, nb, k->cout, c->nimg, k->h, k->w);
        CKL("relu_pool");
    }
    const esm_block *last = &net->block[net->cfg.depth - 1];
    head_kernel<<<nb, THREADS, 0, c->stream>>>(c->act, c->act_floats, c->nimg, last->ho * last->wo, net->emb_dim,
                                               c->labels + (size_t)j * c->nq, c->shape.way, c->shape.shot, c->nq,
                                               c->proto, c->logit, c->qloss, c->qhit, c->loss, c->acc);
    CKL("head");
    return ESM_OK;
}

static esm_status cuda_evaluate(void *impl, const esm_popeval_job *job, float *loss, float *acc, float *fitness,
                                esm_err *err)
{
    cuda_eval *c = (cuda_eval *)impl;
    const esm_net *net = &c->net;
    if (job->count < 1)
        return ESM_OK;
    CK(cudaSetDevice(c->device)); /* the calling thread may have used another GPU since */
    for (int j = 0; j < job->n_eps; j++)
        if (job->eps[j].shape.way != c->shape.way || job->eps[j].shape.shot != c->shape.shot ||
            job->eps[j].shape.query != c->shape.query)
            return esm_fail(err, ESM_EMISMATCH, "cuda evaluator: episode %d is not of the evaluator's shape", j);
    if (job->count > c->h_cap) {
        free(c->h_ls), free(c->h_as);
        c->h_ls = (double *)calloc((size_t)job->count, sizeof(double));
        c->h_as = (double *)calloc((size_t)job->count, sizeof(double));
        c->h_cap = c->h_ls && c->h_as ? job->count : 0;
        if (!c->h_cap)
            return esm_fail(err, ESM_ENOMEM, "out of memory for %d members", job->count);
    }
    esm_status st = upload_episodes(c, job, err);
    if (st != ESM_OK)
        return st;
    CK(cudaMemcpyAsync(c->mean, job->pop.mean, net->n_params * sizeof(float), cudaMemcpyHostToDevice, c->stream));
    /* A scalar sigma gives the same scales every generation: compare on the host (cheap) rather
     * than send n_params floats across PCIe each time. */
    size_t sbytes = net->n_params * sizeof(float);
    if (!c->scale_valid || memcmp(c->h_scale, job->pop.scale, sbytes)) {
        memcpy(c->h_scale, job->pop.scale, sbytes);
        c->scale_valid = 0; /* until the copy is known to have been queued */
        CK(cudaMemcpyAsync(c->scale, c->h_scale, sbytes, cudaMemcpyHostToDevice, c->stream));
        c->scale_valid = 1;
    }
    for (int k = 0; k < job->count; k++)
        c->h_ls[k] = c->h_as[k] = 0.0;
    for (int b0 = 0; b0 < job->count; b0 += c->batch) {
        int nb = job->count - b0 < c->batch ? job->count - b0 : c->batch;
        member_kernel<<<grid_for((net->n_params + 3) / 4 * (size_t)nb), THREADS, 0, c->stream>>>(
            c->mean, c->scale, c->theta, net->n_params, nb, job->begin + b0, job->pop.antithetic, (uint32_t)job->pop.seed,
            (uint32_t)(job->pop.seed >> 32), job->pop.gen);
        CKL("member");
        for (int j = 0; j < job->n_eps; j++) {
            st = forward_episode(c, nb, j, err);
            if (st != ESM_OK)
                return st;
            CK(cudaMemcpyAsync(c->h_loss, c->loss, (size_t)nb * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
            CK(cudaMemcpyAsync(c->h_acc, c->acc, (size_t)nb * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
            CK(cudaStreamSynchronize(c->stream));
            /* The CPU's reduction: episode losses (float) summed in episode order in double. */
            for (int k = 0; k < nb; k++)
                c->h_ls[b0 + k] += c->h_loss[k], c->h_as[b0 + k] += c->h_acc[k];
        }
    }
    for (int k = 0; k < job->count; k++) {
        loss[k] = (float)(c->h_ls[k] / job->n_eps);
        acc[k] = (float)(c->h_as[k] / job->n_eps);
        fitness[k] = -loss[k];
    }
    return ESM_OK;
}

/* The device's noise for one member (mean 0, scale 1), for tests against esm_es_noise_range. */
extern "C" esm_status esm_cuda_member_noise(uint64_t seed, uint32_t gen, int member, int antithetic, size_t n,
                                            float *out, esm_err *err)
{
    float *d = NULL;
    esm_status st = ESM_OK;
    float *h = (float *)calloc(n, sizeof(float));
    if (!h)
        return esm_fail(err, ESM_ENOMEM, "out of memory");
    cudaError_t e = cudaMalloc((void **)&d, 3 * n * sizeof(float));
    if (e == cudaSuccess) {
        for (size_t j = 0; j < n; j++)
            h[j] = 1.0f;
        e = cudaMemset(d, 0, n * sizeof(float));
        if (e == cudaSuccess)
            e = cudaMemcpy(d + n, h, n * sizeof(float), cudaMemcpyHostToDevice);
        if (e == cudaSuccess) {
            member_kernel<<<grid_for((n + 3) / 4), THREADS>>>(d, d + n, d + 2 * n, n, 1, member, antithetic,
                                                             (uint32_t)seed, (uint32_t)(seed >> 32), gen);
            e = cudaGetLastError();
        }
        if (e == cudaSuccess)
            e = cudaMemcpy(out, d + 2 * n, n * sizeof(float), cudaMemcpyDeviceToHost);
    }
    if (e != cudaSuccess)
        st = cuda_fail(err, e, "member noise");
    if (d)
        cudaFree(d);
    free(h);
    return st;
}

extern "C" const esm_popeval_ops esm_popeval_cuda_ops = {
    "cuda",
    cuda_create,
    cuda_evaluate,
    cuda_free_impl,
};
