/* The command-line layer: the only code that parses argv, prints, or exits. */
#ifndef ESM_CLI_H
#define ESM_CLI_H

#include <stdio.h>

#include "args.h"
#include "esmeta.h"

/* A subcommand: argv[0] is the subcommand name. Returns the process exit status. */
typedef int (*esm_cmd_fn)(int argc, char **argv);

int cmd_info(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_sample(int argc, char **argv);

/* Prints "esmeta: <msg>" to stderr as one line and returns exit status 1 (or 2 for usage). When
 * err->field is set, the message's field names are written as the flags that set them. */
int cli_error(const esm_err *err);
/* cli/field_flags.c: the flag that sets a library configuration field (esm_err.field), or NULL;
 * and msg with every field name in it (as a whole word) written as its flag, into out. */
const char *cli_field_flag(const char *field);
void cli_field_flags(const char *msg, char *out, size_t cap);
/* err, about `esmeta train`'s evaluation during training, in that evaluation's flags (--eval-way,
 * not --way), then the rest as cli_field_flags writes them; err->field is then NULL. */
void cli_eval_field_flags(esm_err *err);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Data location: the --data flag, then $ESMETA_DATA, then ../shared/data/omniglot and
 * data/omniglot (relative to the working folder, then to the binary's folder's parent). */
int cli_resolve_data(const char *flag, char *out, size_t cap, esm_err *err);

/* Loads the dataset with a progress line on stderr when it takes a while. */
int cli_load_dataset(const char *flag, esm_dataset **ds, esm_err *err);
/* A user's class-folder tree, or with n_csv > 0 a folder of images named by CSV split files,
 * prepared straight into the cache file out (esm_images_prepare), with the same progress line. */
int cli_prepare_images(const char *dir, const char *const *csvs, int n_csv, esm_images_opts *o, const double *ratio,
                       uint64_t seed, const char *out, esm_dataset **info, esm_err *err);

/* Progress on stderr, redrawn in place when stderr is a terminal. */
void cli_progress(void *user, const char *what, size_t done, size_t total);

/* After cli_args_<cmd>: -1 to go on, else the exit status (0 once help() printed the help, 2
 * once the usage error is printed). */
int cli_args_status(const char *cmd, cli_opts_result r, const char *msg, void (*help)(void));

/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_str(FILE *f, const char *s);



int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_embed(int argc, char **argv);
/* A JSON number, or null when not finite (JSON has no NaN). */
void cli_json_num(FILE *f, double v);
/* BLAS kernel (cli/blas_setup.c). setup: before anything else, replaces a generic OpenBLAS
 * kernel on a CPU that deserves better (by executing itself again; the user's OPENBLAS_CORETYPE
 * always wins). check: before computing, refuses a kernel whose SGEMM is wrong (returns the
 * exit status, 0 when fine). json: the kernel in use as a JSON object. */
void cli_blas_setup(char **argv);
int cli_blas_check(char **argv);
void cli_blas_json(FILE *f);
/* Seconds on a monotonic clock. */
double cli_now(void);

/* Under MPI, 1 if every rank runs the same esmeta executable (a hash of /proc/self/exe); 0
 * with err set otherwise. Collective. */
int cli_check_same_binary(esm_dist *d, esm_err *err);
#endif
