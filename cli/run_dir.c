/* Run directories (see run_dir.h). */
#define _GNU_SOURCE
#include "run_dir.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void set_paths(run_dir *r, const char *dir)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.bin", dir);
    snprintf(r->metrics, sizeof r->metrics, "%s/metrics.jsonl", dir);
}

int run_dir_create(run_dir *r, const char *dir, esm_err *err)
{
    set_paths(r, dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        esm_fail(err, ESM_EIO, "--out %s: cannot create the folder (%s)", dir, strerror(errno));
        return 0;
    }
    if (access(r->ckpt, F_OK) == 0) {
        esm_fail(err, ESM_EINVAL, "--out %s already holds a run (checkpoint.bin); continue it with --resume %s or "
                 "choose another --out", dir, dir);
        return 0;
    }
    r->mf = fopen(r->metrics, "w");
    if (!r->mf) {
        esm_fail(err, ESM_EIO, "%s: %s", r->metrics, strerror(errno));
        return 0;
    }
    return 1;
}

/* "step":N from a metrics line, or -1. */
static int64_t line_step(const char *line)
{
    const char *p = strstr(line, "\"step\":");
    return p ? strtoll(p + 7, NULL, 10) : -1;
}

static double line_elapsed(const char *line)
{
    const char *p = strstr(line, "\"elapsed_s\":");
    return p ? strtod(p + 12, NULL) : 0.0;
}

int run_dir_resume(run_dir *r, const char *dir, int64_t done, esm_err *err)
{
    set_paths(r, dir);
    FILE *old = fopen(r->metrics, "r");
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", r->metrics);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        if (old)
            fclose(old);
        esm_fail(err, ESM_EIO, "%s: %s", tmp, strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    while (old && getline(&line, &cap, old) > 0) {
        int64_t s = line_step(line);
        if (s < 0 || s > done || line[strlen(line) - 1] != '\n')
            continue; /* later than the checkpoint, or cut off by a crash */
        fputs(line, out);
        r->elapsed_offset = line_elapsed(line);
    }
    free(line);
    if (old)
        fclose(old);
    if (fclose(out) != 0 || rename(tmp, r->metrics) != 0) {
        esm_fail(err, ESM_EIO, "%s: cannot rewrite (%s)", r->metrics, strerror(errno));
        return 0;
    }
    r->mf = fopen(r->metrics, "a");
    if (!r->mf) {
        esm_fail(err, ESM_EIO, "%s: %s", r->metrics, strerror(errno));
        return 0;
    }
    return 1;
}

int run_dir_flush(run_dir *r, esm_err *err)
{
    errno = 0;
    if (fflush(r->mf) == 0 && !ferror(r->mf))
        return 1;
    esm_fail(err, ESM_EIO, "%s: cannot write the metrics (%s); the last checkpoint is intact", r->metrics,
             strerror(errno ? errno : EIO));
    return 0;
}

void run_dir_close(run_dir *r)
{
    if (r->mf)
        fclose(r->mf);
    r->mf = NULL;
}
