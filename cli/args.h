/* What each subcommand's options say, before any file is read: cli_args_<cmd> fills the struct
 * from argv (through cli/options.c) with the subcommand's defaults and checks what the
 * arguments alone can show. Each returns CLI_OPTS_OK, CLI_OPTS_HELP (print the help, exit 0) or
 * CLI_OPTS_ERROR with the usage message in msg; none prints or exits, so tests and
 * fuzz/fuzz_cli.c call them directly. argv is permuted as getopt_long did (operands last). */
#ifndef ESM_CLI_ARGS_H
#define ESM_CLI_ARGS_H

#include <stdint.h>

#include "esmeta.h"
#include "options.h"

typedef struct {
    const char *data, *split;
} info_args;

typedef struct {
    const char *data, *split;
    long way, shot, query, count;
    uint64_t seed, first;
} sample_args;

typedef struct {
    const char *data, *split, *ckpt;
    long way, shot, query, episodes, threads;
    uint64_t seed;
} eval_args;

typedef struct {
    const char *ckpt, *data; /* data: the set the model was trained on (its channels and normalisation) */
    int invert;              /* --invert: invert as the set was prepared (only with --data) */
    int first_image;         /* argv[first_image..argc): the images */
} embed_args;

enum { CLI_MAX_CSV = 64 };
typedef struct {
    const char *files[CLI_MAX_CSV];
    int n;
} csv_list;

typedef struct {
    const char *data, *out, *images;
    csv_list csv;
    double ratio[3];
    int have_ratio;
    uint64_t seed;
    esm_images_opts io;
    int image_flag; /* --channels, --size or --invert was given: they shape --images only */
} prepare_args;

typedef struct {
    const char *data, *split, *out, *resume, *trainer, *strategy, *eval_split, *device, *shaping;
    long way, shot, query, width, depth, pop, episodes_per_gen, centre_every, threads, episodes_per_step, chunk;
    int has_chunk; /* --chunk was given (any value, so that a negative one is reported) */
    long long steps, lr_halve_every, sigma_halve_every, checkpoint_every, eval_every, eval_episodes, eval_way, eval_shot,
        eval_query;
    uint64_t seed;
    float lr, sigma, weight_decay;
    long long budget_forwards; /* --budget-forwards: ES generations from member-image forwards; 0 = none */
    float time_limit; /* --time-limit: seconds of training in this process; 0 = none */
    int has_seed, has_lr, has_sigma, has_wd, steps_flag, quiet; /* steps_flag: 1 --episodes, 2 --generations */
    int eval_seen; /* --eval-seen-classes: evaluate on a split that shares classes with the training split */
    const char *shard_update; /* --shard-update auto|on|off (NULL: auto) */
} train_args;

#define CLI_DEFAULT_CACHE "data/omniglot.esmc"

cli_opts_result cli_args_info(int argc, char **argv, info_args *a, char *msg, size_t cap);
cli_opts_result cli_args_sample(int argc, char **argv, sample_args *a, char *msg, size_t cap);
cli_opts_result cli_args_eval(int argc, char **argv, eval_args *a, char *msg, size_t cap);
cli_opts_result cli_args_embed(int argc, char **argv, embed_args *a, char *msg, size_t cap);
cli_opts_result cli_args_prepare(int argc, char **argv, prepare_args *a, char *msg, size_t cap);
/* Also refuses run-describing flags with --resume, and bad --time-limit/--eval-* values. */
cli_opts_result cli_args_train(int argc, char **argv, train_args *a, char *msg, size_t cap);

#endif
