/* Test runner: runs every registered test (or those whose names contain argv filters) in a
 * child process and ends with the line "N passed, N failed". Exits non-zero on any failure. */
#define _GNU_SOURCE
#include "harness.h"
#include "esmeta.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *name;
    void (*fn)(esm_tctx *);
} esm_test_entry;

extern const esm_test_entry esm_test_registry[];
extern const int esm_test_count;

void esm_tfail(esm_tctx *t, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "    %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    t->failures++;
}

static int selected(const char *name, int argc, char **argv)
{
    int any = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        any = 1;
        if (strstr(name, argv[i]))
            return 1;
    }
    return !any;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run_one(const esm_test_entry *e)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 0;
    }
    if (pid == 0) {
        esm_tctx t = {0};
        setenv("ESM_TEST_NAME", e->name, 1);
        e->fn(&t);
        fflush(stdout);
        fflush(stderr);
        _exit(t.failures ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        fprintf(stderr, "    killed by signal %d\n", WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
    esm_blas_single_thread(); /* as the CLI does: the library refuses a BLAS that threads */
    int passed = 0, failed = 0;
    const char *label = getenv("ESM_TEST_LABEL");
    char root[] = "/tmp/esmeta-tests.XXXXXX";
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("ESM_TEST_ROOT", root, 1);
    for (int i = 0; i < esm_test_count; i++) {
        const esm_test_entry *e = &esm_test_registry[i];
        if (!selected(e->name, argc, argv))
            continue;
        double t0 = now_s();
        int ok = run_one(e);
        printf("%s %s%s%s (%.2fs)\n", ok ? "ok  " : "FAIL", label ? label : "", label ? ":" : "",
               e->name, now_s() - t0);
        fflush(stdout);
        ok ? passed++ : failed++;
    }
    if (!getenv("ESM_TEST_KEEP")) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
