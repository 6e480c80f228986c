/* Population evaluation backends: score every ES member of a generation on that generation's
 * episodes. The ES trainer hands a backend the generation's population description
 * (esm_es_population: centre, per-parameter scale, noise key); the backend rebuilds the members
 * itself wherever it computes (through es/member.h, the one definition of a member), so only P
 * fitness values cross back, never P parameter vectors.
 *
 * Like ggml's backends, each implementation is one file of this folder behind this struct of
 * function pointers: cpu.c (one member per thread) and cuda.cu (member batches on the GPU,
 * compiled only when nvcc is found at build time); popeval.c picks one by device name. Every
 * backend is tested against the CPU result (tests/test_cuda.c). */
#ifndef ESM_POPEVAL_POPEVAL_H
#define ESM_POPEVAL_POPEVAL_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"
#include "esmeta/data.h"
#include "esmeta/es.h"
#include "esmeta/model.h"
#include "esmeta/protonet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int tf32;          /* cuda: let cuBLAS round the conv GEMM inputs to TF32 (tensor cores) */
    size_t mem_budget; /* cuda: bytes of device scratch for member batches; 0 = 3/4 of free memory */
    int stream_chunk;  /* cpu: score each episode streamed, this many images at a time
                        * (esm_protonet_loss_stream); 0 = the whole episode in one forward */
    int device_index;  /* cuda: the GPU, modulo the device count (each rank passes its local rank, so
                        * the ranks of one machine spread over its GPUs) */
} esm_popeval_opts;

/* One generation's work. Members [begin, begin + count) are scored with batch-statistics batch
 * norm (ESM_BN_BATCH) on every episode; loss and accuracy are the means over the episodes,
 * taken in episode order in double, and fitness = -loss. A member whose loss is not finite on
 * some episode gets NaN loss, accuracy and fitness (not an error). */
typedef struct {
    const esm_episode *eps; /* [n_eps], all of the backend's shape */
    int n_eps;
    esm_es_population pop;  /* the generation's members (esm_es_population_get); pop.dim = n_params */
    int begin, count;
} esm_popeval_job;

typedef struct {
    const char *name; /* "cpu", "cuda" */
    /* Everything needed to score up to max_members members at a time on episodes of `shape`. */
    esm_status (*create)(const esm_net *net, esm_episode_shape shape, int max_members, const esm_popeval_opts *opts,
                         void **impl, esm_err *err);
    /* loss, acc and fitness are [job->count], member begin + k at index k. */
    esm_status (*evaluate)(void *impl, const esm_popeval_job *job, float *loss, float *acc, float *fitness,
                           esm_err *err);
    void (*free)(void *impl);
} esm_popeval_ops;

typedef struct {
    const esm_popeval_ops *ops;
    void *impl;
} esm_popeval;

extern const esm_popeval_ops esm_popeval_cpu_ops;
#if ESM_HAVE_CUDA
extern const esm_popeval_ops esm_popeval_cuda_ops;
/* Number of usable CUDA devices (0 when the driver or a device is missing); when 0, why (cap
 * bytes, may be NULL) gets the reason. Never fails. */
int esm_cuda_device_count(char *why, size_t cap);
/* The device's standard normals for one member (what the CUDA evaluator adds to the centre), to
 * test them against esm_es_noise_range. */
esm_status esm_cuda_member_noise(uint64_t seed, uint32_t gen, int member, int antithetic, size_t n, float *out,
                                 esm_err *err);
#endif

/* 1 if name is a device this library knows ("cpu", "cuda", "cuda-tf32"), whether or not this
 * build or machine has it. */
int esm_popeval_device_known(const char *name);
/* Number of CUDA devices this process can use: 0 on a build without CUDA or a machine without
 * a GPU. */
int esm_popeval_cuda_devices(void);

/* Opens the backend for `device` ("" means "cpu"), streaming episodes stream_chunk images at a
 * time when stream_chunk > 0 (the CPU backend only), on GPU device_index modulo the GPU count. Fails with a one-line message naming --device
 * when the name is unknown (ESM_EINVAL), the build has no CUDA (ESM_EUNSUPPORTED), no CUDA device
 * is usable (ESM_EUNSUPPORTED) or streaming is asked of a CUDA device (ESM_EUNSUPPORTED). */
esm_status esm_popeval_open(const char *device, const esm_net *net, esm_episode_shape shape, int max_members,
                            int stream_chunk, int device_index, esm_popeval *out, esm_err *err);
esm_status esm_popeval_evaluate(esm_popeval *pe, const esm_popeval_job *job, float *loss, float *acc, float *fitness,
                                esm_err *err);
void esm_popeval_close(esm_popeval *pe);

#ifdef __cplusplus
}
#endif
/* Mean ProtoNet loss and accuracy of `params` over episodes, in `mode`, summed in episode order;
 * streamed in chunks when `stream` is given, else whole through `ws`.
 * A non-finite network is not an error: it yields NaN loss and accuracy (a non-finite fitness). */
esm_status esm_episodes_score(const esm_net *net, const esm_episode *eps, int n_eps, const float *params, float *bn,
                              esm_bn_mode mode, esm_protonet_ws *ws, esm_protonet_stream *stream, float *loss,
                              float *acc, esm_err *err);

#endif
