/* A run directory: checkpoint.bin and metrics.jsonl, kept consistent across resumes. */
#ifndef ESM_CLI_RUN_DIR_H
#define ESM_CLI_RUN_DIR_H

#include <stdint.h>
#include <stdio.h>

#include "core/append_file.h"
#include "esmeta.h"

typedef struct {
    char dir[4096];
    char ckpt[4200];
    char metrics[4200];
    esm_appendf mf;        /* metrics.jsonl, open for appending */
    FILE *line;            /* the metrics line being written (run_dir_line) */
    char *line_buf;
    size_t line_len;
    double elapsed_offset; /* seconds already spent before this process (resumed runs) */
} run_dir;

/* A fresh run: creates dir if needed; refuses a dir that already holds a checkpoint. */
int run_dir_create(run_dir *r, const char *dir, esm_err *err);
/* A resumed run at `done` steps: drops metrics lines of later steps (they belong to work the
 * checkpoint does not have) and picks up the elapsed time. */
int run_dir_resume(run_dir *r, const char *dir, int64_t done, esm_err *err);
/* A metrics line is written to the stream run_dir_line returns, then added to metrics.jsonl
 * whole by run_dir_line_end (through the library's file layer, which the write tests fail). */
FILE *run_dir_line(run_dir *r);
void run_dir_line_end(run_dir *r);
/* Flushes the metrics; 0 with err naming the file if a write since the last flush failed (a
 * full disk): lines lost silently would leave a run whose record ends early with no error. */
int run_dir_flush(run_dir *r, esm_err *err);
/* Closes metrics.jsonl; 0 with err as run_dir_flush if its last lines could not be written. */
int run_dir_close(run_dir *r, esm_err *err);

#endif
