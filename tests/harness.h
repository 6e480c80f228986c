/* A small test harness: each TEST runs in its own process, so a crash fails one test
 * and not the run. The registry is generated from the TEST(...) lines by the Makefile. */
#ifndef ESM_TEST_HARNESS_H
#define ESM_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>

typedef struct {
    int failures;
    int skipped;
    char skip_reason[240];
} esm_tctx;

#define TEST(name) void test_##name(esm_tctx *t_)

void esm_tfail(esm_tctx *t, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Marks the test as not run here, with the reason the runner prints. A skipped test is counted
 * as skipped, never as passed; a failure recorded before or after still fails it. */
void esm_tskip(esm_tctx *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* CHECK records a failure and continues; REQUIRE stops the test. */
#define CHECK(cond) \
    do { if (!(cond)) esm_tfail(t_, __FILE__, __LINE__, "%s", #cond); } while (0)
#define CHECKF(cond, ...) \
    do { if (!(cond)) esm_tfail(t_, __FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(cond) \
    do { if (!(cond)) { esm_tfail(t_, __FILE__, __LINE__, "%s", #cond); return; } } while (0)
#define REQUIREF(cond, ...) \
    do { if (!(cond)) { esm_tfail(t_, __FILE__, __LINE__, __VA_ARGS__); return; } } while (0)
#define CHECK_NEAR(a, b, tol) \
    do { double a_ = (a), b_ = (b); \
         if (!(fabs(a_ - b_) <= (tol))) \
             esm_tfail(t_, __FILE__, __LINE__, "%s = %.9g, %s = %.9g, tolerance %.3g", #a, a_, #b, b_, (double)(tol)); \
    } while (0)
/* Ends the test as skipped: SKIP("no CUDA device: %s", why). */
#define SKIP(...) \
    do { esm_tskip(t_, __VA_ARGS__); return; } while (0)
/* For esm_status-returning calls: on failure show the library's message. */
#define REQUIRE_OK(expr, errp) \
    do { esm_status s_ = (expr); \
         if (s_ != ESM_OK) { esm_tfail(t_, __FILE__, __LINE__, "%s -> %s: %s", #expr, esm_status_name(s_), (errp)->msg); return; } \
    } while (0)

/* Shared fixtures and helpers (tests/fixtures.c). */
const char *esm_test_data_dir(void);    /* the Omniglot folder, or NULL (test then fails) */
const char *esm_test_cli(void);         /* path of the esmeta binary under test */
const char *esm_test_tmpdir(void);      /* a private scratch folder for this test */
const char *esm_test_cache(void);       /* a prepared cache of the full data set */

/* Runs the CLI with a shell-quoted argument string; captures stdout and stderr (each
 * truncated to cap bytes) and returns the exit status (-1 if it did not exit normally). */
int esm_test_run_cli(const char *args, char *out, size_t out_cap, char *errbuf, size_t err_cap);



/* Runs esmeta with args; checks a non-zero exit, exactly one stderr line containing n1 and
 * n2 (either may be NULL), and nothing on stdout. */
void esm_test_expect_cli_error(esm_tctx *t_, const char *args, const char *n1, const char *n2);

/* Data fixtures (tests/fixture_data.c). */
#include "esmeta/data.h"
/* The full data set, from the shared cache (NULL on failure, with a message). */
esm_dataset *esm_test_dataset(void);

typedef enum { MINI_DIRS, MINI_ZIP, MINI_ZIP_WITH_DIR_ENTRIES } esm_mini_layout;
/* Builds dir/images_{background,evaluation}{.zip,/} holding the first n_chars characters of
 * each half of the real data, in the given layout; copies the split files if with_splits. */
int esm_test_make_mini(const char *dir, int n_chars, esm_mini_layout layout, int with_splits);
/* Writes a w x h greyscale PNG (all background except one ink pixel). */
int esm_test_write_png(const char *path, int w, int h);
/* Copies a file, keeping only its first keep bytes when keep >= 0. */
int esm_test_copy_file(const char *from, const char *to, long keep);
/* Lines of a text file that contain needle (0 if the file is missing). */
int esm_test_count_lines(const char *path, const char *needle);
/* Counts entries of a folder whose names start with prefix. */
int esm_test_count_files(const char *dir, const char *prefix);
#endif
