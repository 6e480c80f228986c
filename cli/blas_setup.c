/* Start-up choice of the BLAS kernel, and its check before any number is computed.
 *
 * Debian's OpenBLAS picks its kernel when the library loads, before main runs, and falls back to
 * a generic SSE kernel on a CPU it does not know (2.7x slower on an AVX-512 Xeon). It reads
 * OPENBLAS_CORETYPE only then, so the one way to change the kernel of the linked library is to
 * set the variable and execute ourselves again; the pid, arguments and MPI environment stay the
 * same. (Loading the BLAS with dlopen after choosing would avoid the exec, but every GEMM call
 * would then go through a pointer table, and so would every test and bench.) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CORE_VAR "OPENBLAS_CORETYPE"
#define REPLACED_VAR "ESMETA_BLAS_REPLACED" /* the kernel OpenBLAS picked, which esmeta replaced */
#define REFUSED_VAR "ESMETA_BLAS_REFUSED"   /* a kernel that failed the check */
#define TEST_VAR "ESMETA_TEST_BLAS_CORE"    /* tests: act as if OpenBLAS had picked this kernel */

static const char *picked_core(esm_blas_info *bi)
{
    const char *fake = getenv(TEST_VAR);
    return fake && *fake ? fake : bi->core;
}

static void reexec(char **argv, const char *core, const char *why)
{
    setenv(CORE_VAR, core, 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "esmeta: warning: %s, but running again with %s=%s failed; set it yourself\n", why, CORE_VAR,
            core);
}

void cli_blas_setup(char **argv)
{
    esm_blas_single_thread();
    if (getenv(CORE_VAR))
        return; /* the user's choice, or the one made before our exec */
    esm_blas_info bi;
    esm_blas_get_info(&bi);
    const char *core = picked_core(&bi), *better = esm_blas_better_core(core, esm_cpu_caps_detect());
    if (!better)
        return;
    setenv(REPLACED_VAR, core, 1);
    char why[128];
    snprintf(why, sizeof why, "OpenBLAS picked its generic %s kernel for this CPU", core);
    reexec(argv, better, why);
    unsetenv(REPLACED_VAR);
    unsetenv(CORE_VAR);
}

int cli_blas_check(char **argv)
{
    esm_err err = {0};
    if (esm_blas_selfcheck(&err) == ESM_OK)
        return 0;
    const char *replaced = getenv(REPLACED_VAR);
    if (replaced && !getenv(REFUSED_VAR)) {
        /* our own choice computes wrong: go back to the kernel OpenBLAS picked, and say so */
        setenv(REFUSED_VAR, getenv(CORE_VAR), 1);
        fprintf(stderr, "esmeta: warning: %s; using %s instead\n", err.msg, replaced);
        reexec(argv, replaced, "the chosen BLAS kernel computes wrong");
    }
    return cli_error(&err);
}

void cli_blas_json(FILE *f)
{
    esm_blas_info bi;
    esm_blas_get_info(&bi);
    const char *user = getenv(CORE_VAR), *replaced = getenv(REPLACED_VAR);
    const char *by = replaced ? "esmeta" : user ? CORE_VAR : "openblas";
    const char *core = replaced || user ? bi.core : picked_core(&bi);
    int generic = esm_blas_better_core(core, esm_cpu_caps_detect()) != NULL;
    fprintf(f, "{\"library\":\"%s\",\"core\":", esm_get_features().blas);
    cli_json_str(f, core);
    fprintf(f, ",\"chosen_by\":\"%s\",\"generic\":%s,\"threads_per_call\":%d", by, generic ? "true" : "false",
            bi.threads);
    if (replaced) {
        fprintf(f, ",\"replaced\":");
        cli_json_str(f, replaced);
    }
    fputc('}', f);
}
