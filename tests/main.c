/* Test runner: runs every registered test (or those whose names contain argv filters) in a
 * child process, lists the skipped tests with their reasons, and ends with the line
 * "N passed, N failed, N skipped". Exits non-zero on any failure (skips alone do not). */
#define _GNU_SOURCE
#include "harness.h"
#include "esmeta.h"

#include <fcntl.h>
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

void esm_tskip(esm_tctx *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->skip_reason, sizeof t->skip_reason, fmt, ap);
    va_end(ap);
    t->skipped = 1;
}

/* The exit status of a skipped test's process (automake's convention). */
#define SKIP_EXIT 77

typedef enum { RESULT_PASS, RESULT_FAIL, RESULT_SKIP } test_result;

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

/* Runs one test in a child process. A skipping child sends its reason back through a pipe that
 * neither blocks (a grandchild that kept it open cannot hang the runner) nor outlives an exec. */
static test_result run_one(const esm_test_entry *e, char *reason, size_t cap)
{
    int fds[2];
    reason[0] = 0;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        perror("pipe2");
        return RESULT_FAIL;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        close(fds[0]), close(fds[1]);
        return RESULT_FAIL;
    }
    if (pid == 0) {
        close(fds[0]);
        esm_tctx t = {0};
        setenv("ESM_TEST_NAME", e->name, 1);
        e->fn(&t);
        fflush(stdout);
        fflush(stderr);
        if (!t.failures && t.skipped && write(fds[1], t.skip_reason, strlen(t.skip_reason)) < 0)
            _exit(1);
        _exit(t.failures ? 1 : t.skipped ? SKIP_EXIT : 0);
    }
    close(fds[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    ssize_t n = read(fds[0], reason, cap - 1);
    reason[n > 0 ? n : 0] = 0;
    close(fds[0]);
    if (WIFSIGNALED(status))
        fprintf(stderr, "    killed by signal %d\n", WTERMSIG(status));
    if (!WIFEXITED(status))
        return RESULT_FAIL;
    if (WEXITSTATUS(status) == SKIP_EXIT)
        return reason[0] ? RESULT_SKIP : RESULT_FAIL; /* a skip must say why */
    return WEXITSTATUS(status) == 0 ? RESULT_PASS : RESULT_FAIL;
}

int main(int argc, char **argv)
{
    esm_blas_single_thread(); /* as the CLI does: the library refuses a BLAS that threads */
    int passed = 0, failed = 0, skipped = 0;
    const char *label = getenv("ESM_TEST_LABEL");
    char root[] = "/tmp/esmeta-tests.XXXXXX";
    char (*reasons)[sizeof ((esm_tctx *)0)->skip_reason] = calloc((size_t)esm_test_count + 1, sizeof *reasons);
    if (!reasons || !mkdtemp(root)) {
        perror("esmeta-tests");
        return 1;
    }
    setenv("ESM_TEST_ROOT", root, 1);
    for (int i = 0; i < esm_test_count; i++) {
        const esm_test_entry *e = &esm_test_registry[i];
        if (!selected(e->name, argc, argv))
            continue;
        double t0 = now_s();
        test_result r = run_one(e, reasons[i], sizeof reasons[i]);
        static const char *const tag[] = {"ok  ", "FAIL", "skip"};
        printf("%s %s%s%s (%.2fs)%s%s\n", tag[r], label ? label : "", label ? ":" : "", e->name, now_s() - t0,
               r == RESULT_SKIP ? ": " : "", r == RESULT_SKIP ? reasons[i] : "");
        fflush(stdout);
        passed += r == RESULT_PASS, failed += r == RESULT_FAIL, skipped += r == RESULT_SKIP;
        if (r != RESULT_SKIP)
            reasons[i][0] = 0;
    }
    if (!getenv("ESM_TEST_KEEP")) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
    if (skipped)
        printf("skipped (not run here, not passed):\n");
    for (int i = 0; i < esm_test_count; i++)
        if (reasons[i][0])
            printf("    %s%s%s: %s\n", label ? label : "", label ? ":" : "", esm_test_registry[i].name, reasons[i]);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    free(reasons);
    return failed ? 1 : 0;
}
