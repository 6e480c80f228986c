/* The subcommands' option tables, defaults and argument checks (cli/args.h). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

#define STR(n, T, f) {.name = n, .kind = CLI_OPT_STR, .off = offsetof(T, f)}
#define LONG(n, T, f, lo, hi) {.name = n, .kind = CLI_OPT_LONG, .off = offsetof(T, f), .min = lo, .max = hi}
#define LLONG(n, T, f, lo, hi) {.name = n, .kind = CLI_OPT_LLONG, .off = offsetof(T, f), .min = lo, .max = hi}
#define U64(n, T, f) {.name = n, .kind = CLI_OPT_U64, .off = offsetof(T, f)}
#define HELP {.name = "help", .kind = CLI_OPT_HELP}
#define END {.name = NULL}

/* Parses, then refuses operands where the subcommand takes none. */
static cli_opts_result parse(const cli_opt *table, int argc, char **argv, void *a, int operands, int *first,
                             char *msg, size_t cap)
{
    int first_ = argc;
    cli_opts_result r = cli_parse_options(table, argc, argv, a, &first_, msg, cap);
    if (first)
        *first = first_;
    if (r == CLI_OPTS_OK && !operands && first_ < argc) {
        snprintf(msg, cap, "unexpected argument '%s'", argv[first_]);
        return CLI_OPTS_ERROR;
    }
    return r;
}

static cli_opts_result fail(char *msg, size_t cap, const char *text)
{
    snprintf(msg, cap, "%s", text);
    return CLI_OPTS_ERROR;
}

cli_opts_result cli_args_info(int argc, char **argv, info_args *a, char *msg, size_t cap)
{
    static const cli_opt t[] = {STR("data", info_args, data), STR("split", info_args, split), HELP, END};
    *a = (info_args){.split = "trainval"};
    return parse(t, argc, argv, a, 0, NULL, msg, cap);
}

#define SHAPE_MAX 1000000
cli_opts_result cli_args_sample(int argc, char **argv, sample_args *a, char *msg, size_t cap)
{
    static const cli_opt t[] = {
        STR("data", sample_args, data), STR("split", sample_args, split),
        LONG("way", sample_args, way, -SHAPE_MAX, SHAPE_MAX), LONG("shot", sample_args, shot, -SHAPE_MAX, SHAPE_MAX),
        LONG("query", sample_args, query, -SHAPE_MAX, SHAPE_MAX), U64("seed", sample_args, seed),
        U64("episode", sample_args, first), LONG("count", sample_args, count, 1, 1000000), HELP, END};
    *a = (sample_args){.split = "test", .way = 5, .shot = 5, .query = 15, .count = 1};
    return parse(t, argc, argv, a, 0, NULL, msg, cap);
}

cli_opts_result cli_args_eval(int argc, char **argv, eval_args *a, char *msg, size_t cap)
{
    static const cli_opt t[] = {
        STR("checkpoint", eval_args, ckpt), STR("data", eval_args, data), STR("split", eval_args, split),
        LONG("way", eval_args, way, -SHAPE_MAX, SHAPE_MAX), LONG("shot", eval_args, shot, -SHAPE_MAX, SHAPE_MAX),
        LONG("query", eval_args, query, -SHAPE_MAX, SHAPE_MAX),
        LONG("episodes", eval_args, episodes, -100000000, 100000000),
        U64("seed", eval_args, seed), LONG("threads", eval_args, threads, 1, 4096), HELP, END};
    *a = (eval_args){.split = "test", .way = 5, .shot = 5, .query = 15, .episodes = 1000};
    cli_opts_result r = parse(t, argc, argv, a, 0, NULL, msg, cap);
    if (r == CLI_OPTS_OK && !a->ckpt)
        return fail(msg, cap, "--checkpoint FILE is required (a run's checkpoint.bin)");
    return r;
}

cli_opts_result cli_args_embed(int argc, char **argv, embed_args *a, char *msg, size_t cap)
{
    static const cli_opt t[] = {STR("checkpoint", embed_args, ckpt), STR("data", embed_args, data),
                                {.name = "invert", .kind = CLI_OPT_SET, .off = offsetof(embed_args, invert), .set = 1},
                                HELP, END};
    *a = (embed_args){0};
    cli_opts_result r = parse(t, argc, argv, a, 1, &a->first_image, msg, cap);
    if (r != CLI_OPTS_OK)
        return r;
    if (!a->ckpt)
        return fail(msg, cap, "--checkpoint FILE is required");
    if (a->invert && !a->data)
        return fail(msg, cap, "--invert goes with --data (without it, Omniglot's inversion is applied)");
    if (a->first_image >= argc)
        return fail(msg, cap, "give at least one IMAGE (PNG or JPEG)");
    return r;
}

static int parse_csv(const char *flag, const char *v, void *field, char *msg, size_t cap)
{
    csv_list *l = field;
    if (l->n == CLI_MAX_CSV) {
        snprintf(msg, cap, "more than %d %s files", CLI_MAX_CSV, flag);
        return 0;
    }
    l->files[l->n++] = v;
    return 1;
}

static int parse_ratio(const char *flag, const char *v, void *field, char *msg, size_t cap)
{
    double *r = field;
    char tail;
    if (sscanf(v, "%lf,%lf,%lf%c", &r[0], &r[1], &r[2], &tail) == 3)
        return 1;
    snprintf(msg, cap, "%s '%s': expected three fractions, e.g. 0.7,0.1,0.2", flag, v);
    return 0;
}

/* --channels and --size: the syntax only; their ranges are the library's to check
 * (esm_images_opts.shape), so they are checked once. */
static int parse_channels(const char *flag, const char *v, void *field, char *msg, size_t cap)
{
    long long c;
    if (!cli_opt_llong(flag, v, -SHAPE_MAX, SHAPE_MAX, &c, msg, cap))
        return 0;
    *(int *)field = (int)c;
    return 1;
}

static int parse_size(const char *flag, const char *v, void *field, char *msg, size_t cap)
{
    esm_image_shape *s = field;
    char *end;
    long h = strtol(v, &end, 10), w = 0;
    int ok = end != v && (*end == 'x' || *end == 'X');
    if (ok) {
        const char *w_at = end + 1;
        w = strtol(w_at, &end, 10);
        ok = end != w_at && !*end && labs(h) <= SHAPE_MAX && labs(w) <= SHAPE_MAX;
    }
    if (!ok) {
        snprintf(msg, cap, "%s '%s': expected HxW, e.g. 84x84", flag, v);
        return 0;
    }
    s->height = (int)h, s->width = (int)w;
    return 1;
}

cli_opts_result cli_args_prepare(int argc, char **argv, prepare_args *a, char *msg, size_t cap)
{
    static const cli_opt t[] = {
        STR("data", prepare_args, data), STR("out", prepare_args, out), STR("images", prepare_args, images),
        {.name = "channels", .kind = CLI_OPT_CUSTOM, .off = offsetof(prepare_args, io.shape.channels),
         .parse = parse_channels, .mark_at = CLI_MARK(prepare_args, image_flag), .set = 1},
        {.name = "size", .kind = CLI_OPT_CUSTOM, .off = offsetof(prepare_args, io.shape), .parse = parse_size,
         .mark_at = CLI_MARK(prepare_args, image_flag), .set = 1},
        {.name = "invert", .kind = CLI_OPT_SET, .off = offsetof(prepare_args, io.shape.invert), .set = 1,
         .mark_at = CLI_MARK(prepare_args, image_flag)},
        {.name = "no-normalize", .kind = CLI_OPT_SET, .off = offsetof(prepare_args, io.normalize), .set = 0},
        {.name = "csv", .kind = CLI_OPT_CUSTOM, .off = offsetof(prepare_args, csv), .parse = parse_csv},
        {.name = "split-ratio", .kind = CLI_OPT_CUSTOM, .off = offsetof(prepare_args, ratio), .parse = parse_ratio,
         .mark_at = CLI_MARK(prepare_args, have_ratio), .set = 1},
        U64("seed", prepare_args, seed), HELP, END};
    *a = (prepare_args){.out = CLI_DEFAULT_CACHE,
                        .io = {.shape = {.channels = 3, .height = 84, .width = 84}, .normalize = 1}};
    cli_opts_result r = parse(t, argc, argv, a, 0, NULL, msg, cap);
    if (r != CLI_OPTS_OK)
        return r;
    if (a->csv.n && !a->images)
        return fail(msg, cap, "--csv needs --images DIR, the folder its file names are in");
    if (a->csv.n && a->have_ratio)
        return fail(msg, cap, "--csv files are the splits already; drop --split-ratio");
    if (a->images && a->data)
        return fail(msg, cap, "--images and --data are two different sources; give one");
    /* Omniglot has one preparation (the papers'): a flag that would be ignored is refused instead */
    if (!a->images && (a->image_flag || !a->io.normalize))
        return fail(msg, cap, "--channels, --size, --invert and --no-normalize shape your own --images DIR; Omniglot "
                    "is always prepared as the papers prepare it: drop them");
    return CLI_OPTS_OK;
}

#define BIG 1000000000L
#define TL(n, f) LONG(n, train_args, f, -BIG, BIG)
#define TLL(n, f) LLONG(n, train_args, f, -BIG, BIG)
#define TSTR(n, f) STR(n, train_args, f)
#define TMARK(f, v) .mark_at = CLI_MARK(train_args, f), .set = v
#define TFLOAT(n, f, mark) {.name = n, .kind = CLI_OPT_FLOAT, .off = offsetof(train_args, f), TMARK(mark, 1)}

/* Flags that describe the run itself cannot change on resume (the checkpoint has them). */
static int resume_flags_ok(const train_args *a)
{
    return !(a->split || a->way >= 0 || a->shot >= 0 || a->query >= 0 || a->width >= 0 || a->depth >= 0 ||
             a->pop >= 0 || a->episodes_per_gen >= 0 || a->has_seed || a->has_lr || a->has_sigma || a->has_wd ||
             a->lr_halve_every >= 0 || a->centre_every >= 0 || a->episodes_per_step >= 0 || a->has_chunk ||
             a->shaping || a->sigma_halve_every >= 0);
}

cli_opts_result cli_args_train(int argc, char **argv, train_args *a, char *msg, size_t cap)
{
    static const cli_opt t[] = {
        TSTR("data", data), TSTR("split", split), TSTR("out", out), TSTR("resume", resume),
        TSTR("trainer", trainer), TSTR("strategy", strategy), TSTR("shaping", shaping), TL("way", way),
        TL("shot", shot),
        TL("query", query), TL("width", width), TL("depth", depth), TL("pop", pop),
        TL("episodes-per-gen", episodes_per_gen), TL("centre-every", centre_every), TL("threads", threads),
        {.name = "episodes", .kind = CLI_OPT_LLONG, .off = offsetof(train_args, steps), .min = -BIG, .max = BIG,
         TMARK(steps_flag, 1)},
        {.name = "generations", .kind = CLI_OPT_LLONG, .off = offsetof(train_args, steps), .min = -BIG, .max = BIG,
         TMARK(steps_flag, 2)},
        TLL("lr-halve-every", lr_halve_every), TLL("sigma-halve-every", sigma_halve_every),
        TLL("checkpoint-every", checkpoint_every),
        TLL("eval-every", eval_every), TLL("eval-episodes", eval_episodes), TSTR("eval-split", eval_split),
        TLL("eval-way", eval_way), TLL("eval-shot", eval_shot), TLL("eval-query", eval_query),
        {.name = "seed", .kind = CLI_OPT_U64, .off = offsetof(train_args, seed), TMARK(has_seed, 1)},
        TFLOAT("lr", lr, has_lr), TFLOAT("sigma", sigma, has_sigma), TFLOAT("weight-decay", weight_decay, has_wd),
        {.name = "quiet", .kind = CLI_OPT_SET, .off = offsetof(train_args, quiet), .set = 1}, HELP,
        TL("episodes-per-step", episodes_per_step), TSTR("device", device),
        {.name = "chunk", .kind = CLI_OPT_LONG, .off = offsetof(train_args, chunk), .min = -BIG, .max = BIG,
         TMARK(has_chunk, 1)},
        {.name = "time-limit", .kind = CLI_OPT_FLOAT, .off = offsetof(train_args, time_limit)},
        {.name = "eval-seen-classes", .kind = CLI_OPT_SET, .off = offsetof(train_args, eval_seen), .set = 1},
        TLL("budget-forwards", budget_forwards), TSTR("shard-update", shard_update), END};
    *a = (train_args){.way = -1, .shot = -1, .query = -1, .width = -1, .depth = -1, .pop = -1,
                      .episodes_per_gen = -1, .centre_every = -1, .episodes_per_step = -1, .steps = -1,
                      .lr_halve_every = -1, .sigma_halve_every = -1, .checkpoint_every = 500, .eval_episodes = 100,
                      .eval_way = 5, .eval_shot = 5, .eval_query = 15, .eval_split = "val"};
    cli_opts_result r = parse(t, argc, argv, a, 0, NULL, msg, cap);
    if (r != CLI_OPTS_OK)
        return r;
    if (a->shard_update && strcmp(a->shard_update, "auto") && strcmp(a->shard_update, "on") &&
        strcmp(a->shard_update, "off")) {
        snprintf(msg, cap, "--shard-update '%.64s': use auto, on or off", a->shard_update);
        return CLI_OPTS_ERROR;
    }
    if (!a->out == !a->resume)
        return fail(msg, cap, "give exactly one of --out RUN_DIR (a new run) and --resume RUN_DIR");
    if (a->resume && !resume_flags_ok(a))
        return fail(msg, cap, "--resume continues a run with the configuration saved in its checkpoint; only --data, "
                    "--episodes/--generations, --device, --checkpoint-every, --eval-*, --threads, --shard-update "
                    "and --quiet may be given with it");
    if (!(a->time_limit >= 0) || !isfinite(a->time_limit)) {
        snprintf(msg, cap, "--time-limit %g: give the training budget in seconds (> 0)", (double)a->time_limit);
        return CLI_OPTS_ERROR;
    }
    if (a->eval_every < 0 || a->checkpoint_every < 0 || a->eval_episodes < 1)
        return fail(msg, cap, "--eval-every and --checkpoint-every must be >= 0 and --eval-episodes >= 1");
    return CLI_OPTS_OK;
}
