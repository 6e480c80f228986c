/* The population-evaluation registry: picks a backend by device name and says clearly why one
 * is missing. */
#include "popeval/popeval.h"

#include <string.h>

int esm_popeval_device_known(const char *name)
{
    return !name[0] || !strcmp(name, "cpu") || !strcmp(name, "cuda") || !strcmp(name, "cuda-tf32");
}

int esm_popeval_cuda_devices(void)
{
#if ESM_HAVE_CUDA
    return esm_cuda_device_count(NULL, 0);
#else
    return 0;
#endif
}

esm_status esm_popeval_open(const char *device, const esm_net *net, esm_episode_shape shape, int max_members,
                            int stream_chunk, int device_index, esm_popeval *out, esm_err *err)
{
    out->ops = NULL;
    out->impl = NULL;
    if (!esm_popeval_device_known(device))
        return esm_fail_field(err, ESM_EINVAL, "device", "device '%s' is unknown: use cpu, cuda or cuda-tf32", device);
    esm_popeval_opts opts = {.stream_chunk = stream_chunk, .device_index = device_index < 0 ? 0 : device_index};
    const esm_popeval_ops *ops = &esm_popeval_cpu_ops;
    if (!strncmp(device, "cuda", 4) && stream_chunk > 0)
        return esm_fail_field(err, ESM_EUNSUPPORTED, "stream_chunk", "stream_chunk %d: streamed episodes are scored "
                              "on the CPU only; use device cpu, or stream_chunk 0 with device %s", stream_chunk,
                              device);
    if (!strncmp(device, "cuda", 4)) {
#if ESM_HAVE_CUDA
        char why[160] = "none found";
        if (esm_cuda_device_count(why, sizeof why) < 1)
            return esm_fail_field(err, ESM_EUNSUPPORTED, "device", "device %s: no CUDA GPU is usable here (%s); use "
                                  "device cpu", device, why);
        ops = &esm_popeval_cuda_ops;
        opts.tf32 = !strcmp(device, "cuda-tf32");
#else
        return esm_fail_field(err, ESM_EUNSUPPORTED, "device", "device %s: this esmeta was built without CUDA (no nvcc "
                              "at build time); use device cpu", device);
#endif
    }
    esm_status st = ops->create(net, shape, max_members, &opts, &out->impl, err);
    if (st == ESM_OK)
        out->ops = ops;
    return st;
}

esm_status esm_popeval_evaluate(esm_popeval *pe, const esm_popeval_job *job, float *loss, float *acc, float *fitness,
                                esm_err *err)
{
    return pe->ops->evaluate(pe->impl, job, loss, acc, fitness, err);
}

void esm_popeval_close(esm_popeval *pe)
{
    if (pe->ops)
        pe->ops->free(pe->impl);
    pe->ops = NULL;
    pe->impl = NULL;
}
