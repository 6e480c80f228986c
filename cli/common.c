/* Shared CLI plumbing: errors, progress, number parsing, JSON strings, finding the data. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/read_file.h"

int cli_error(const esm_err *err)
{
    if (isatty(2))
        fputs("\r\033[K", stderr); /* clear a progress line left mid-way */
    char msg[sizeof err->msg + 256]; /* a flag is at most a few characters longer than its field */
    /* Only a message about a field follows the library's naming contract (core.h); others are
     * printed as they are, so a word such as "split" in a file error is left alone. */
    if (err->field)
        cli_field_flags(err->msg, msg, sizeof msg);
    else
        snprintf(msg, sizeof msg, "%s", err->msg);
    fprintf(stderr, "esmeta: %s\n", msg[0] ? msg : esm_status_name(err->code));
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "esmeta %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'esmeta %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

int cli_args_status(const char *cmd, cli_opts_result r, const char *msg, void (*help)(void))
{
    if (r == CLI_OPTS_OK)
        return -1;
    if (r == CLI_OPTS_HELP) {
        help();
        return 0;
    }
    return cli_usage_error(cmd, "%s", msg);
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

int cli_resolve_data(const char *flag, char *out, size_t cap, esm_err *err)
{
    if (flag) {
        if (!exists(flag)) {
            esm_fail(err, ESM_ENOTFOUND, "--data %s: no such file or folder", flag);
            return 0;
        }
        snprintf(out, cap, "%s", flag);
        return 1;
    }
    const char *env = getenv("ESMETA_DATA");
    if (env && *env) {
        if (!exists(env)) {
            esm_fail(err, ESM_ENOTFOUND, "ESMETA_DATA=%s: no such file or folder", env);
            return 0;
        }
        snprintf(out, cap, "%s", env);
        return 1;
    }
    /* Also relative to the binary (build/esmeta), so it works from any working folder. */
    char exe[PATH_MAX] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    const char *rel[] = {"../shared/data/omniglot", "data/omniglot"};
    for (int base = 0; base < 2; base++)
        for (int i = 0; i < 2; i++) {
            char cand[PATH_MAX + 64];
            if (base == 0)
                snprintf(cand, sizeof cand, "%s", rel[i]);
            else if (exe[0])
                snprintf(cand, sizeof cand, "%s/../%s", exe, rel[i]);
            else
                continue;
            if (exists(cand)) {
                snprintf(out, cap, "%s", cand);
                return 1;
            }
        }
    esm_fail(err, ESM_ENOTFOUND, "no Omniglot data found: pass --data PATH, set ESMETA_DATA, or run "
             "scripts/fetch-omniglot (looked in ../shared/data/omniglot and data/omniglot)");
    return 0;
}

typedef struct {
    double start, last;
    int tty, shown;
} progress_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress(void *user, const char *what, size_t done, size_t total)
{
    progress_state *p = user;
    double t = now_s();
    if (done < total && t - p->last < (p->tty ? 0.2 : 2.0))
        return;
    if (done < total && t - p->start < 1.0)
        return; /* quick work stays quiet */
    if (done >= total && !p->shown)
        return;
    p->last = t;
    p->shown = 1;
    fprintf(stderr, "%s%s: %zu/%zu (%.1fs)%s", p->tty ? "\r" : "", what, done, total, t - p->start,
            p->tty && done < total ? "" : "\n");
    fflush(stderr);
}

int cli_load_dataset(const char *flag, esm_dataset **ds, esm_err *err)
{
    char path[4096];
    if (!cli_resolve_data(flag, path, sizeof path, err))
        return 0;
    progress_state ps = {.start = now_s(), .tty = isatty(2)};
    esm_load_opts o = esm_load_opts_default();
    o.progress = cli_progress;
    o.progress_user = &ps;
    return esm_dataset_load(path, &o, ds, err) == ESM_OK;
}

int cli_prepare_images(const char *dir, const char *const *csvs, int n_csv, esm_images_opts *o, const double *ratio,
                       uint64_t seed, const char *out, esm_dataset **info, esm_err *err)
{
    progress_state ps = {.start = now_s(), .tty = isatty(2)};
    o->progress = cli_progress;
    o->progress_user = &ps;
    return esm_images_prepare(dir, csvs, n_csv, o, ratio, seed, out, info, err) == ESM_OK;
}

void cli_json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

double cli_now(void) { return now_s(); }

/* Ranks built from different sources can agree on every option and still compute different
 * bits; their executables then differ, which one hash per rank shows at start-up. */
int cli_check_same_binary(esm_dist *d, esm_err *err)
{
    if (esm_dist_size(d) <= 1)
        return 1;
    unsigned char *exe = NULL;
    size_t len = 0;
    uint64_t h = 0; /* a rank that cannot read its executable disagrees with those that can */
    if (esm_read_file("/proc/self/exe", "executable", &exe, &len, err) == ESM_OK)
        h = esm_dist_hash(ESM_DIST_HASH_INIT, exe, len);
    free(exe);
    esm_status st = esm_dist_check_same(d, h, "the esmeta binary", err);
    if (st == ESM_EDIST)
        esm_fail(err, ESM_EDIST, "the %d ranks run different esmeta executables (rebuild or copy the same one "
                 "everywhere); stopped before the first step", esm_dist_size(d));
    return st == ESM_OK;
}
