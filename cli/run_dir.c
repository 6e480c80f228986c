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
    return esm_appendf_open(&r->mf, r->metrics, 1, err) == ESM_OK;
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

/* Keeps the lines of steps up to done, replacing the file atomically: a crash while resuming
 * leaves the old record. */
int run_dir_resume(run_dir *r, const char *dir, int64_t done, esm_err *err)
{
    set_paths(r, dir);
    FILE *old = fopen(r->metrics, "r");
    esm_afile out;
    if (esm_afile_open(&out, r->metrics, err) != ESM_OK) {
        if (old)
            fclose(old);
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (old && (n = getline(&line, &cap, old)) > 0) {
        int64_t s = line_step(line);
        if (s < 0 || s > done || line[n - 1] != '\n')
            continue; /* later than the checkpoint, or cut off by a crash */
        esm_afile_write(&out, line, (size_t)n);
        r->elapsed_offset = line_elapsed(line);
    }
    free(line);
    if (old)
        fclose(old);
    return esm_afile_commit(&out, err) == ESM_OK && esm_appendf_open(&r->mf, r->metrics, 0, err) == ESM_OK;
}

FILE *run_dir_line(run_dir *r)
{
    r->line = open_memstream(&r->line_buf, &r->line_len);
    if (!r->line && !r->mf.failed)
        r->mf.failed = ENOMEM;
    return r->line ? r->line : stderr; /* the line is then lost, and the next flush says so */
}

void run_dir_line_end(run_dir *r)
{
    if (!r->line)
        return;
    if (fclose(r->line) == 0)
        esm_appendf_write(&r->mf, r->line_buf, r->line_len);
    else if (!r->mf.failed)
        r->mf.failed = ENOMEM;
    free(r->line_buf);
    r->line = NULL, r->line_buf = NULL, r->line_len = 0;
}

static int metrics_failed(run_dir *r, esm_err *err)
{
    esm_fail(err, ESM_EIO, "%s: cannot write the metrics (%s); the last checkpoint is intact", r->metrics,
             strerror(r->mf.failed ? r->mf.failed : EIO));
    return 0;
}

int run_dir_flush(run_dir *r, esm_err *err)
{
    return esm_appendf_flush(&r->mf, NULL) == ESM_OK ? 1 : metrics_failed(r, err);
}

int run_dir_close(run_dir *r, esm_err *err)
{
    if (r->line)
        run_dir_line_end(r);
    return esm_appendf_close(&r->mf, NULL) == ESM_OK ? 1 : metrics_failed(r, err);
}
