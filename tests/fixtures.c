/* Fixtures shared by tests: data location, scratch folders, running the CLI. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "esmeta.h"
#include "harness.h"

const char *esm_test_data_dir(void)
{
    const char *env = getenv("ESMETA_DATA");
    if (env && *env)
        return env;
    struct stat st;
    if (stat("../shared/data/omniglot", &st) == 0)
        return "../shared/data/omniglot";
    fprintf(stderr, "    no Omniglot data: set ESMETA_DATA or place it at ../shared/data/omniglot\n");
    return NULL;
}

const char *esm_test_cli(void)
{
    const char *p = getenv("ESM_TEST_CLI");
    return p && *p ? p : "build/esmeta";
}

/* The runner exports ESM_TEST_ROOT (one scratch folder for the whole run); each test gets
 * ROOT/<test name>, created on first use. */
const char *esm_test_tmpdir(void)
{
    static char path[4096];
    const char *root = getenv("ESM_TEST_ROOT");
    const char *name = getenv("ESM_TEST_NAME");
    snprintf(path, sizeof path, "%s/%s", root ? root : "/tmp", name ? name : "scratch");
    mkdir(path, 0700);
    return path;
}

static void read_all(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return;
    if (f) {
        int c;
        while ((c = fgetc(f)) != EOF)
            if (n + 1 < cap)
                buf[n++] = (char)c;
    }
    buf[n] = 0;
}

int esm_test_run_cli(const char *args, char *out, size_t out_cap, char *errbuf, size_t err_cap)
{
    char errpath[4200], cmd[16384];
    snprintf(errpath, sizeof errpath, "%s/cli-stderr.txt", esm_test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s 2>'%s'", esm_test_cli(), args, errpath);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char sink[1];
    read_all(p, out ? out : sink, out ? out_cap : sizeof sink);
    int status = pclose(p);
    FILE *e = fopen(errpath, "r");
    read_all(e, errbuf ? errbuf : sink, errbuf ? err_cap : sizeof sink);
    if (e)
        fclose(e);
    if (errbuf && err_cap && getenv("ESM_TEST_VERBOSE"))
        fprintf(stderr, "    [cli %s] stderr: %s\n", args, errbuf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs esmeta with args; checks exit != 0, exactly one stderr line, containing each needle. */
void esm_test_expect_cli_error(esm_tctx *t_, const char *args, const char *n1, const char *n2)
{
    char out[4096], err[4096];
    int rc = esm_test_run_cli(args, out, sizeof out, err, sizeof err);
    CHECKF(rc > 0, "esmeta %s: exit %d, expected an error", args, rc);
    size_t len = strlen(err);
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += err[i] == '\n';
    CHECKF(lines == 1 && len > 0 && err[len - 1] == '\n', "esmeta %s: stderr is not one line: [%s]", args, err);
    CHECKF(!n1 || strstr(err, n1), "esmeta %s: error [%s] does not mention '%s'", args, err, n1);
    CHECKF(!n2 || strstr(err, n2), "esmeta %s: error [%s] does not mention '%s'", args, err, n2);
    CHECKF(out[0] == 0, "esmeta %s: printed a result despite failing: %s", args, out);
}

