/* The CUDA population evaluator against the CPU one, and --device handling.
 *
 * The tests named cuda_gpu_* need a GPU: without one (or on a build without CUDA) they are
 * reported as skipped, with the reason, never as passed; bench/gpu-check.sh fails unless every
 * one of them ran. The error path of `--device cuda` is tested where there is no GPU, which is
 * every CI machine, and skipped where there is one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"
#include "popeval/popeval.h"
#include "train/trainer_internal.h"

#define TINY_ES "--trainer es --width 8 --depth 2 --way 5 --shot 1 --query 2 --pop 4 --seed 3 --quiet"

/* Marks the test skipped and returns 1 when no GPU can run it, saying why. */
static int no_device(esm_tctx *t_)
{
#if ESM_HAVE_CUDA
    char why[160] = "none found";
    if (esm_cuda_device_count(why, sizeof why) > 0)
        return 0;
    esm_tskip(t_, "no CUDA device: %s", why);
#else
    esm_tskip(t_, "this build has no CUDA (no nvcc at build time)");
#endif
    return 1;
}

TEST(cuda_device_config_round_trips)
{
    esm_err err = {0};
    esm_train_config c = esm_train_config_default(ESM_TRAINER_ES), back;
    CHECK(!strcmp(c.device, "cpu"));
    snprintf(c.device, sizeof c.device, "cuda-tf32");
    char text[4096];
    int n = esm_config_to_text(&c, text, sizeof text);
    REQUIRE(n > 0 && n < (int)sizeof text && strstr(text, "\ndevice=cuda-tf32\n"));
    REQUIRE_OK(esm_config_from_text(text, (size_t)n, &back, "test", &err), &err);
    CHECK(!strcmp(back.device, "cuda-tf32"));
    /* A checkpoint written before the field existed scored members on the CPU. */
    const char *old = "trainer=es\npop=8\n";
    REQUIRE_OK(esm_config_from_text(old, strlen(old), &back, "test", &err), &err);
    CHECK(!strcmp(back.device, "cpu"));
    CHECK(esm_popeval_device_known("cpu") && esm_popeval_device_known("cuda") &&
          esm_popeval_device_known("cuda-tf32") && esm_popeval_device_known("") && !esm_popeval_device_known("tpu"));
}

/* An unknown device is one clear line; a CPU run resumes on the CPU and only on a known device. */
TEST(cuda_train_device_errors)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char args[9000];
    snprintf(args, sizeof args, "train --data %s " TINY_ES " --generations 1 --device tpu --out %s/a", cache, tmp);
    esm_test_expect_cli_error(t_, args, "--device 'tpu' is unknown", "cpu, cuda or cuda-tf32");
    snprintf(args, sizeof args, "train --data %s --width 8 --depth 2 --episodes 1 --device cuda --out %s/a", cache,
             tmp);
    esm_test_expect_cli_error(t_, args, "--device", "--trainer es");
    /* A CPU run can be resumed on another device, and only on a known one. */
    char out[4096], errbuf[4096];
    snprintf(args, sizeof args, "train --data %s " TINY_ES " --generations 1 --device cpu --out %s/c", cache, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, errbuf, sizeof errbuf) == 0);
    snprintf(args, sizeof args, "train --data %s --resume %s/c --generations 2 --device tpu", cache, tmp);
    esm_test_expect_cli_error(t_, args, "--device 'tpu' is unknown", NULL);
    snprintf(args, sizeof args, "train --data %s --resume %s/c --generations 2 --device cpu", cache, tmp);
    CHECKF(esm_test_run_cli(args, out, sizeof out, errbuf, sizeof errbuf) == 0 && strstr(out, "\"steps\":2"),
           "resume --device cpu: %s %s", out, errbuf);
}

/* Without a GPU (or without CUDA in the build) --device cuda is one clear line, and nothing is
 * written. With a GPU the command would train, so the check cannot run there. */
TEST(cuda_train_without_device_fails_cleanly)
{
    if (esm_popeval_cuda_devices() > 0)
        SKIP("a CUDA device is present: the no-GPU error cannot be provoked");
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char args[9000], out[4096], errbuf[4096];
    snprintf(args, sizeof args, "train --data %s " TINY_ES " --generations 1 --device cpu --out %s/c", cache, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, errbuf, sizeof errbuf) == 0);
    snprintf(args, sizeof args, "train --data %s --resume %s/c --generations 3 --device cuda", cache, tmp);
    esm_test_expect_cli_error(t_, args, "--device cuda", "use --device cpu");
    for (int tf32 = 0; tf32 < 2; tf32++) {
        snprintf(args, sizeof args, "train --data %s " TINY_ES " --generations 1 --device %s --out %s/b", cache,
                 tf32 ? "cuda-tf32" : "cuda", tmp);
        esm_test_expect_cli_error(t_, args, tf32 ? "--device cuda-tf32" : "--device cuda", "use --device cpu");
        CHECK(esm_test_count_files(tmp, "b") == 0);
    }
}

#if ESM_HAVE_CUDA
/* Device noise within a relative 1e-6 of esm_es_noise_range (libm differences only: CUDA's
 * logf is within 1 ulp, sinf/cosf within 2 ulp). A length that is not a multiple of 4 and both
 * members of an antithetic pair. */
static void compare_noise(esm_tctx *t_)
{
    esm_err err = {0};
    const size_t n = 4099;
    float *host = malloc(n * sizeof *host), *dev = malloc(n * sizeof *dev);
    REQUIRE(host && dev);
    int exact = 0, total = 0;
    double worst = 0;
    for (int member = 0; member < 4; member++)
        for (int anti = 0; anti < 2; anti++) {
            esm_es_noise_range(0x1234567887654321ull, 5, member, anti, 0, n, host);
            REQUIRE_OK(esm_cuda_member_noise(0x1234567887654321ull, 5, member, anti, n, dev, &err), &err);
            for (size_t j = 0; j < n; j++) {
                double d = fabs((double)dev[j] - host[j]), rel = d / fmax(fabs(host[j]), 1e-30);
                exact += dev[j] == host[j];
                total++;
                worst = rel > worst ? rel : worst;
                if (!(d <= 1e-6 * fabs(host[j]))) {
                    esm_tfail(t_, __FILE__, __LINE__, "member %d antithetic %d j %zu: device %.9g host %.9g", member,
                              anti, j, dev[j], host[j]);
                    free(host), free(dev);
                    return;
                }
            }
        }
    printf("    noise: %d of %d identical, worst relative difference %.3g\n", exact, total, worst);
    free(host), free(dev);
}

/* Episodes from the real data when it is here, else synthetic ones (sparse random "ink" on 28x28,
 * labels class-major), so that the comparison runs on a GPU machine without the data too. */
static int make_episodes(esm_dataset *ds, esm_episode_shape shape, int n_eps, esm_episode *eps, esm_err *err)
{
    esm_split sp;
    if (ds && esm_split_get(ds, "trainval", &sp, err) != ESM_OK)
        return 0;
    esm_dataset fake;
    memset(&fake, 0, sizeof fake);
    fake.channels = 1, fake.height = 28, fake.width = 28;
    for (int j = 0; j < n_eps; j++) {
        if (esm_episode_init(&eps[j], ds ? ds : &fake, shape, err) != ESM_OK)
            return 0;
        if (ds) {
            esm_episode_sample(&eps[j], ds, &sp, 21, (uint64_t)j);
            continue;
        }
        esm_stream r = esm_stream_make(99, (uint32_t)j, 0, 0);
        size_t ns = (size_t)shape.way * shape.shot * 784, nq = (size_t)shape.way * shape.query * 784;
        for (size_t i = 0; i < ns; i++)
            eps[j].support[i] = esm_stream_below(&r, 5) == 0 ? esm_stream_uniform(&r) : 0.0f;
        for (size_t i = 0; i < nq; i++)
            eps[j].query[i] = esm_stream_below(&r, 5) == 0 ? esm_stream_uniform(&r) : 0.0f;
        for (int q = 0; q < shape.way * shape.query; q++)
            eps[j].query_label[q] = q / shape.query;
    }
    if (ds)
        esm_split_free(&sp);
    return 1;
}

/* The mean loss and accuracy of members [begin, begin + count) on the CPU and on the GPU;
 * budget forces the GPU to split them into several batches. */
static void compare_fitness(esm_tctx *t_, const esm_net_config *nc, esm_episode_shape shape, int n_eps, int begin,
                            int count, int antithetic, int tf32, size_t budget, double tol, float spread)
{
    esm_err err = {0};
    esm_dataset *ds = getenv("ESM_TEST_SYNTHETIC") ? NULL : esm_test_dataset();
    esm_net net;
    REQUIRE_OK(esm_net_init(&net, nc, &err), &err);
    esm_episode eps[4];
    memset(eps, 0, sizeof eps);
    REQUIRE(n_eps <= 4);
    REQUIRE_OK(make_episodes(ds, shape, n_eps, eps, &err) ? ESM_OK : err.code, &err);
    float *mean = malloc(net.n_params * sizeof *mean), *scale = malloc(net.n_params * sizeof *scale);
    float *res = malloc(6 * (size_t)count * sizeof *res);
    REQUIRE(mean && scale && res);
    esm_net_init_params(&net, 21, mean, NULL);
    for (size_t j = 0; j < net.n_params; j++) /* per-parameter scales, as sep-cma and pgpe have */
        scale[j] = spread * (0.01f + 0.03f * (float)(j % 7) / 7.0f);
    esm_popeval_job job = {.eps = eps, .n_eps = n_eps, .begin = begin, .count = count,
                           .pop = {.mean = mean, .scale = scale, .dim = net.n_params, .popsize = begin + count,
                                   .seed = 0xfeedbeefcafef00dull, .gen = 3, .antithetic = antithetic}};
    esm_popeval_opts opts = {.tf32 = tf32, .mem_budget = budget};
    void *cpu = NULL, *gpu = NULL;
    float *lc = res, *ac = res + count, *fc = res + 2 * count, *lg = res + 3 * count, *ag = res + 4 * count,
          *fg = res + 5 * count;
    REQUIRE_OK(esm_popeval_cpu_ops.create(&net, shape, count, &opts, &cpu, &err), &err);
    REQUIRE_OK(esm_popeval_cpu_ops.evaluate(cpu, &job, lc, ac, fc, &err), &err);
    REQUIRE_OK(esm_popeval_cuda_ops.create(&net, shape, count, &opts, &gpu, &err), &err);
    REQUIRE_OK(esm_popeval_cuda_ops.evaluate(gpu, &job, lg, ag, fg, &err), &err);
    /* A second call reuses the buffers and must give the same bits. */
    float *again = malloc(3 * (size_t)count * sizeof *again);
    REQUIRE(again);
    REQUIRE_OK(esm_popeval_cuda_ops.evaluate(gpu, &job, again, again + count, again + 2 * count, &err), &err);
    CHECK(!memcmp(again, lg, (size_t)count * sizeof *lg));
    int nq = shape.way * shape.query, acc_diff = 0;
    double worst = 0;
    for (int k = 0; k < count; k++) {
        double rel = fabs((double)lg[k] - lc[k]) / fmax(1.0, fabs(lc[k]));
        worst = rel > worst ? rel : worst;
        CHECKF(rel <= tol, "member %d (tf32 %d): gpu loss %.9g, cpu %.9g (relative %.3g > %.3g)", begin + k, tf32,
               lg[k], lc[k], rel, tol);
        CHECK(fg[k] == -lg[k]);
        CHECKF(!(lg[k] < 0.0f), "member %d: negative gpu loss %.9g (cpu %.9g)", begin + k, lg[k], lc[k]);
        /* A query sitting on a decision boundary may flip: at most one per episode. */
        CHECKF(fabs((double)ag[k] - ac[k]) <= 1.0 / nq + 1e-6, "member %d: gpu acc %g, cpu %g", begin + k, ag[k],
               ac[k]);
        acc_diff += ag[k] != ac[k];
    }
    CHECKF(acc_diff <= (tf32 ? count / 2 : count / 8), "%d of %d members' accuracies differ", acc_diff, count);
    printf("    %s data, width %d depth %d, %d-way %d-shot %d-query x %d, members %d..%d, tf32 %d: worst relative loss "
           "difference %.3g, %d accuracies differ\n", ds ? "Omniglot" : "synthetic", nc->width, nc->depth, shape.way, shape.shot, shape.query, n_eps,
           begin, begin + count - 1, tf32, worst, acc_diff);
    esm_popeval_cuda_ops.free(gpu);
    esm_popeval_cpu_ops.free(cpu);
    free(mean), free(scale), free(res), free(again);
    for (int j = 0; j < n_eps; j++)
        esm_episode_free(&eps[j]);
    esm_dataset_free(ds);
}
#endif

TEST(cuda_gpu_noise_matches_host)
{
    if (no_device(t_))
        return;
#if ESM_HAVE_CUDA
    compare_noise(t_);
#else
    (void)t_;
#endif
}

/* CUDA fitness of the same members on the same episodes as the CPU's: the default conv-4
 * (width 64) on 5-way 5-shot 5-query episodes, and a small odd-sized net split into batches of
 * a few members by a tiny memory budget (4 MiB above cuBLAS's 32 MiB workspace). FP32 within
 * a relative 2e-4 of the CPU's loss (the GEMMs sum in another order); TF32 within 2e-2. */
TEST(cuda_gpu_fitness_matches_cpu)
{
    if (no_device(t_))
        return;
#if ESM_HAVE_CUDA
    esm_net_config big = esm_net_config_default(), small = esm_net_config_default();
    small.width = 12;
    small.depth = 3;
    esm_episode_shape s555 = {5, 5, 5}, s312 = {3, 1, 2};
    compare_fitness(t_, &big, s555, 2, 0, 16, 1, 0, 0, 2e-4, 1.0f);
    compare_fitness(t_, &small, s312, 3, 5, 11, 0, 0, (32u + 4u) << 20, 2e-4, 1.0f);
    compare_fitness(t_, &big, s555, 1, 0, 16, 1, 1, 0, 2e-2, 1.0f);
    /* Diverging members: scales 3e4 times larger give batch-norm gains ~1e3 and logits ~1e8,
     * where the head must take the best class's term exactly, as the CPU does. */
    compare_fitness(t_, &big, s555, 1, 0, 16, 1, 0, 0, 2e-4, 3e4f);
#else
    (void)t_;
#endif
}

/* The sizes the device is for: a population of 4096 (many batches, member indices past what the
 * small tests reach, where the Philox counters' high words change) at width 32, and a 20-way
 * 5-shot 15-query episode (400 images, the size the CPU streams) with the default net. */
TEST(cuda_gpu_fitness_matches_cpu_at_scale)
{
    if (no_device(t_))
        return;
#if ESM_HAVE_CUDA
    esm_net_config w32 = esm_net_config_default(), big = esm_net_config_default();
    w32.width = 32;
    esm_episode_shape s555 = {5, 5, 5}, s20 = {20, 5, 15};
    compare_fitness(t_, &w32, s555, 1, 0, 4096, 1, 0, 0, 2e-4, 1.0f);
    compare_fitness(t_, &big, s20, 1, 0, 32, 1, 0, 0, 2e-4, 1.0f);
    compare_fitness(t_, &big, s20, 1, 0, 32, 1, 0, 0, 2e-4, 3e4f);
#else
    (void)t_;
#endif
}
