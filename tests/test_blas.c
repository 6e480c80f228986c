/* The BLAS kernel: which kernel replaces a generic one, the SGEMM check, and the CLI's use of both. */
#define _GNU_SOURCE
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

void openblas_set_num_threads(int);

TEST(blas_better_core_replaces_only_generic_kernels)
{
    esm_cpu_caps none = {0}, avx2 = {.avx2_fma = 1}, avx512 = {.avx2_fma = 1, .avx512 = 1};
    const char *generic[] = {"Prescott", "PRESCOTT", "Core2", "Nehalem", "Sandybridge", "Barcelona"};
    for (size_t i = 0; i < sizeof generic / sizeof *generic; i++) {
        const char *a = esm_blas_better_core(generic[i], avx2), *b = esm_blas_better_core(generic[i], avx512);
        CHECKF(a && !strcmp(a, "Haswell"), "%s on AVX2: %s", generic[i], a ? a : "(kept)");
        CHECKF(b && !strcmp(b, "SkylakeX"), "%s on AVX-512: %s", generic[i], b ? b : "(kept)");
        CHECKF(!esm_blas_better_core(generic[i], none), "%s on a CPU without AVX2 must be kept", generic[i]);
    }
    const char *fine[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++)
        CHECKF(!esm_blas_better_core(fine[i], avx512), "%s must be kept", fine[i]);
    CHECK(!esm_blas_better_core(NULL, avx2));
}

TEST(blas_selfcheck_passes_on_the_kernel_in_use)
{
    esm_err err = {0};
    REQUIRE_OK(esm_blas_selfcheck(&err), &err);
    esm_blas_info bi;
    esm_blas_get_info(&bi);
    CHECKF(bi.core[0] && strstr(bi.config, "OpenBLAS"), "core '%s', config '%s'", bi.core, bi.config);
    CHECKF(bi.threads == 1, "one BLAS call may use %d threads: results would depend on them", bi.threads);
    const char *forced = getenv("OPENBLAS_CORETYPE");
    if (forced)
        CHECKF(!strcasecmp(forced, bi.core), "OPENBLAS_CORETYPE=%s but the kernel is %s", forced, bi.core);
}

static int version(const char *env, char *out, size_t cap)
{
    char args[512], err[1024];
    snprintf(args, sizeof args, "--version");
    char *saved[2] = {0};
    const char *names[2] = {"ESMETA_TEST_BLAS_CORE", "OPENBLAS_CORETYPE"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(names[i]);
    }
    if (env) {
        char *copy = strdup(env), *eq = strchr(copy, '=');
        *eq = 0;
        setenv(copy, eq + 1, 1);
        free(copy);
    }
    int rc = esm_test_run_cli(args, out, cap, err, sizeof err);
    for (int i = 0; i < 2; i++) {
        if (saved[i])
            setenv(names[i], saved[i], 1);
        else
            unsetenv(names[i]);
        free(saved[i]);
    }
    return rc;
}

TEST(blas_cli_replaces_a_generic_kernel_and_keeps_the_users_choice)
{
    char out[2048];
    esm_cpu_caps caps = esm_cpu_caps_detect();
    /* OpenBLAS "picks" Prescott: on a CPU with AVX2 the CLI runs itself again with a better kernel */
    REQUIRE(version("ESMETA_TEST_BLAS_CORE=Prescott", out, sizeof out) == 0);
    if (caps.avx2_fma) {
        CHECKF(strstr(out, "\"chosen_by\":\"esmeta\"") && strstr(out, "\"replaced\":\"Prescott\"") &&
               strstr(out, "\"generic\":false") && !strstr(out, "\"core\":\"Prescott\""), "%s", out);
    } else {
        CHECKF(strstr(out, "\"chosen_by\":\"openblas\""), "%s", out);
    }
    /* the user's OPENBLAS_CORETYPE wins, even a generic one (reported as such) */
    REQUIRE(version("OPENBLAS_CORETYPE=Prescott", out, sizeof out) == 0);
    CHECKF(strstr(out, "\"core\":\"Prescott\"") && strstr(out, "\"chosen_by\":\"OPENBLAS_CORETYPE\"") &&
           !strstr(out, "\"replaced\""), "%s", out);
    if (caps.avx2_fma)
        CHECKF(strstr(out, "\"generic\":true"), "%s", out);
    /* a kernel OpenBLAS knows is left alone */
    REQUIRE(version(NULL, out, sizeof out) == 0);
    CHECKF(strstr(out, "\"chosen_by\":\"openblas\"") || getenv("OPENBLAS_CORETYPE"), "%s", out);
}

TEST(blas_cli_refuses_a_kernel_that_computes_wrong)
{
    const char *cache = esm_test_cache();
    REQUIRE(cache);
    char lib[4200], args[8400];
    snprintf(lib, sizeof lib, "%s", esm_test_cli());
    char *slash = strrchr(lib, '/');
    REQUIRE(slash);
    snprintf(slash + 1, sizeof lib - (size_t)(slash + 1 - lib), "libwrong-sgemm.so");
    FILE *f = fopen(lib, "rb");
    REQUIREF(f, "%s is missing (make builds it with the tests)", lib);
    fclose(f);
    setenv("LD_PRELOAD", lib, 1);
    setenv("ASAN_OPTIONS", "detect_leaks=1:verify_asan_link_order=0", 1);
    snprintf(args, sizeof args, "train --data %s --width 8 --depth 2 --way 5 --shot 1 --query 2 --episodes 1 "
             "--quiet --out %s/run", cache, esm_test_tmpdir());
    esm_test_expect_cli_error(t_, args, "computes wrong SGEMM", "OPENBLAS_CORETYPE");
    unsetenv("LD_PRELOAD");
    char ck[4300];
    snprintf(ck, sizeof ck, "%s/run/checkpoint.bin", esm_test_tmpdir());
    f = fopen(ck, "rb");
    CHECKF(!f, "a checkpoint was written with the wrong kernel");
    if (f)
        fclose(f);
}

/* A BLAS allowed to split GEMMs over threads would tie the bits to them: training refuses it. */
TEST(blas_training_refuses_a_threaded_blas)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    esm_err err = {0};
    esm_split sp;
    REQUIRE_OK(esm_split_get(ds, "train", &sp, &err), &err);
    esm_train_config c = esm_train_config_default(ESM_TRAINER_BACKPROP);
    c.net.width = 8, c.net.depth = 2, c.shape = (esm_episode_shape){5, 1, 2};
    esm_trainer *t = NULL;
    openblas_set_num_threads(2); /* this test runs in its own process */
    CHECK(esm_trainer_create(&c, ds, &sp, &t, &err) == ESM_EUNSUPPORTED && strstr(err.msg, "esm_blas_single_thread"));
    CHECK(t == NULL);
    esm_blas_single_thread();
    REQUIRE_OK(esm_trainer_create(&c, ds, &sp, &t, &err), &err);
    esm_trainer_free(t);
    esm_split_free(&sp);
    esm_dataset_free(ds);
}

/* Members run their GEMMs on several threads at once: the BLAS must be safe for that. Debian's
 * serial OpenBLAS is not (its buffer table is unlocked): it gave wrong products here about once
 * in 20 concurrent calls of these small shapes. */
TEST(blas_concurrent_calls_give_the_serial_result)
{
    static const int shapes[][3] = {{8, 196, 72}, {16, 196, 144}, {8, 784, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
        float *ref = malloc(sizeof(float) * (size_t)m * n);
        REQUIRE(a && b && ref);
        esm_gauss_fill(9, 0, 0, a, (size_t)m * k);
        esm_gauss_fill(9, 1, 0, b, (size_t)k * n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, ref, n);
        int bad = 0;
#pragma omp parallel num_threads(3) reduction(+ : bad)
        {
            float *c = malloc(sizeof(float) * (size_t)m * n);
            for (int r = 0; c && r < 10000; r++) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
                bad += memcmp(c, ref, sizeof(float) * (size_t)m * n) != 0;
            }
            bad += !c;
            free(c);
        }
        CHECKF(bad == 0, "%dx%dx%d: %d of 30000 concurrent products differ from the serial one", m, n, k, bad);
        free(a), free(b), free(ref);
    }
}
