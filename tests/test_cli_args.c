/* The subcommands' option parsing (cli/args.c, cli/options.c), called directly, and two bugs
 * the CLI fuzz harness's work showed, through the binary. */
#include <stdio.h>
#include <string.h>

#include "../cli/cli.h"
#include "harness.h"

/* Splits a space-separated line into argv (no quoting; the words are kept in buf). */
static int split_args(char *buf, char **argv, int cap)
{
    int n = 0;
    for (char *w = strtok(buf, " "); w && n < cap - 1; w = strtok(NULL, " "))
        argv[n++] = w;
    argv[n] = NULL;
    return n;
}

TEST(cli_args_train_fills_fields_defaults_and_marks)
{
    char buf[] = "train --out r --way 7 --generations 12 --seed 9 --lr=0.5 --quiet --chunk -3";
    char *argv[32], msg[600];
    int argc = split_args(buf, argv, 32);
    train_args a;
    REQUIRE(cli_args_train(argc, argv, &a, msg, sizeof msg) == CLI_OPTS_OK);
    CHECK(msg[0] == 0);
    CHECK(!strcmp(a.out, "r") && !a.resume);
    CHECK(a.way == 7 && a.shot == -1 && a.steps == 12 && a.steps_flag == 2);
    CHECK(a.seed == 9 && a.has_seed && a.lr == 0.5f && a.has_lr && !a.has_sigma);
    CHECK(a.quiet == 1 && a.chunk == -3 && a.has_chunk);
    CHECK(a.checkpoint_every == 500 && a.eval_episodes == 100 && !strcmp(a.eval_split, "val"));
}

TEST(cli_args_parse_again_gives_the_same_result)
{
    /* getopt kept its position in a global: a second parse in one process saw nothing. */
    for (int round = 0; round < 2; round++) {
        char buf[] = "sample --way 3 --count 4 --episode 2";
        char *argv[16], msg[600];
        int argc = split_args(buf, argv, 16);
        sample_args a;
        REQUIRE(cli_args_sample(argc, argv, &a, msg, sizeof msg) == CLI_OPTS_OK);
        CHECKF(a.way == 3 && a.count == 4 && a.first == 2 && a.shot == 5, "round %d", round);
    }
}

TEST(cli_args_operands_prefixes_and_double_dash)
{
    char buf[] = "embed a.png --check c.bin b.png -- --c.png";
    char *argv[16], msg[600];
    int argc = split_args(buf, argv, 16);
    embed_args a;
    REQUIRE(cli_args_embed(argc, argv, &a, msg, sizeof msg) == CLI_OPTS_OK);
    CHECK(!strcmp(a.ckpt, "c.bin")); /* a unique prefix names the option */
    REQUIRE(argc - a.first_image == 3);
    CHECK(!strcmp(argv[a.first_image], "a.png") && !strcmp(argv[a.first_image + 1], "b.png") &&
          !strcmp(argv[a.first_image + 2], "--c.png"));
}

/* The message for argv line, or "" when it parses. */
static const char *train_error(const char *line, char *msg, size_t cap)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", line);
    char *argv[32];
    int argc = split_args(buf, argv, 32);
    train_args a;
    cli_opts_result r = cli_args_train(argc, argv, &a, msg, cap);
    if (r != CLI_OPTS_ERROR)
        msg[0] = 0;
    return msg;
}

TEST(cli_args_each_bad_argument_is_named)
{
    char m[600];
    const struct {
        const char *line, *says;
    } cases[] = {
        {"train --out r --ep 3", "unknown or incomplete option '--ep'"}, /* --episodes, --episodes-per-gen, ... */
        {"train --out r --way", "unknown or incomplete option '--way'"},
        {"train --out r --quiet=1", "unknown or incomplete option '--quiet=1'"},
        {"train --out r -xy", "unknown or incomplete option '-xy'"},
        {"train --out r --way 2000000000", "--way 2000000000 is out of range [-1000000000, 1000000000]"},
        {"train --out r --lr inf", "--lr 'inf' is not a finite number"},
        {"train --out r extra", "unexpected argument 'extra'"},
        {"train --way 3", "give exactly one of --out RUN_DIR"},
        {"train --resume r --pop 4", "--resume continues a run"},
        {"train --out r --eval-episodes 0", "--eval-episodes >= 1"},
        {"train --out r --seed -0", "--seed '-0' is not a non-negative integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECKF(strstr(train_error(cases[i].line, m, sizeof m), cases[i].says), "%s: [%s]", cases[i].line, m);
    CHECK(train_error("train --out r --way -5", m, sizeof m)[0] == 0); /* a value may start with '-' */
    char buf[] = "train --out r --help --bogus";
    char *argv[8];
    train_args a;
    CHECK(cli_args_train(split_args(buf, argv, 8), argv, &a, m, sizeof m) == CLI_OPTS_HELP);
}

TEST(cli_args_prepare_custom_values)
{
    char buf[] = "prepare --images d --size 32x48 --channels 1 --invert --no-normalize --csv a.csv --csv b.csv";
    char *argv[32], msg[600];
    int argc = split_args(buf, argv, 32);
    prepare_args a;
    REQUIRE(cli_args_prepare(argc, argv, &a, msg, sizeof msg) == CLI_OPTS_OK);
    CHECK(a.io.shape.height == 32 && a.io.shape.width == 48 && a.io.shape.channels == 1 && a.io.shape.invert);
    CHECK(a.io.normalize == 0 && a.csv.n == 2 && !strcmp(a.csv.files[1], "b.csv") && !a.have_ratio);
    CHECK(!strcmp(a.out, CLI_DEFAULT_CACHE));
    char bad[] = "prepare --split-ratio 0.5,0.5";
    argc = split_args(bad, argv, 32);
    CHECK(cli_args_prepare(argc, argv, &a, msg, sizeof msg) == CLI_OPTS_ERROR && strstr(msg, "--split-ratio '0.5,0.5'"));
    const char *ignored[] = {"--channels 1", "--size 28x28", "--invert", "--no-normalize"};
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) {
        char line[200];
        snprintf(line, sizeof line, "prepare --data d %s", ignored[i]);
        argc = split_args(line, argv, 32);
        CHECKF(cli_args_prepare(argc, argv, &a, msg, sizeof msg) == CLI_OPTS_ERROR && strstr(msg, "--images DIR"),
               "%s: [%s]", line, msg);
    }
}

/* Found writing the CLI harness: getopt reported a bad short-option cluster by the argument
 * before it ("unknown or incomplete option 'info'"). */
TEST(cli_unknown_short_option_cluster_is_named)
{
    esm_test_expect_cli_error(t_, "info -xy", "'-xy'", NULL);
    esm_test_expect_cli_error(t_, "sample --count 2 -qz", "'-qz'", NULL);
}

/* Found writing the CLI harness: strtoull skips blanks and negates, so --seed " -1" ran with seed
 * 2^64 - 1 (the '-' check only looked at the first character). */
TEST(cli_seed_with_blank_and_minus_is_refused)
{
    esm_test_expect_cli_error(t_, "sample --data /nonexistent --seed ' -1'", "--seed ' -1'", "non-negative");
    esm_test_expect_cli_error(t_, "eval --checkpoint x --seed ' -1'", "--seed ' -1'", "non-negative");
}

/* The CLI writes the library's field names as its flags: whole words only, every mention. */
TEST(cli_field_names_become_flags)
{
    const struct {
        const char *in, *out;
    } cases[] = {
        {"pop 3 is odd but openai-es samples antithetic pairs: use an even pop (e.g. 4)",
         "--pop 3 is odd but openai-es samples antithetic pairs: use an even --pop (e.g. 4)"},
        {"pop 1: ES needs a population of at least 2", "--pop 1: ES needs a population of at least 2"},
        {"net.width 9 is too wide; use a smaller net.width.", "--width 9 is too wide; use a smaller --width."},
        {"stream_chunk 4: use device cpu, or stream_chunk 0 with device cuda",
         "--chunk 4: use --device cpu, or --chunk 0 with --device cuda"},
        {"steps -1 must not be negative", "--episodes/--generations -1 must not be negative"},
        {"shape.height 0 must be 1..4096", "--size height 0 must be 1..4096"},
        {"lr_halve_every -1; --lr 2, lr.x, x.lr and lrs stay", "--lr-halve-every -1; --lr 2, lr.x, x.lr and lrs stay"},
        {"stream_chunk -1 must be 0 (whole episodes) or positive", "--chunk -1 must be 0 (whole episodes) or positive"},
        {"device 'pop' is unknown", "--device 'pop' is unknown"},
        {"all 4 members' losses are NaN; try a smaller sigma or lr", "all 4 members' losses are NaN; try a smaller "
                                                                    "--sigma or --lr"},
        {"checkpoint /runs/lr/c.bin: resume with split test", "checkpoint /runs/lr/c.bin: resume with --split test"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[200];
        cli_field_flags(cases[i].in, out, sizeof out);
        CHECKF(!strcmp(out, cases[i].out), "[%s] -> [%s], expected [%s]", cases[i].in, out, cases[i].out);
    }
    char tiny[8];
    cli_field_flags("pop pop pop", tiny, sizeof tiny);
    CHECKF(strlen(tiny) == sizeof tiny - 1 && !strncmp(tiny, "--pop -", 7), "[%s]", tiny);
    CHECK(cli_field_flag("pop") && !strcmp(cli_field_flag("pop"), "--pop") && cli_field_flag("nonsense") == NULL);
}

/* The evaluation during training has flags of its own for the same library fields. */
TEST(cli_eval_field_names_become_eval_flags)
{
    esm_err err = {0};
    esm_fail_field(&err, ESM_EINVAL, "shape.shot", "shape.shot 19 + shape.query 15 = 34; n_episodes 3, pop 4");
    cli_eval_field_flags(&err);
    CHECKF(!strcmp(err.msg, "--eval-shot 19 + --eval-query 15 = 34; --eval-episodes 3, --pop 4"), "[%s]", err.msg);
    CHECK(err.field == NULL);
    esm_err plain = {0};
    esm_fail(&plain, ESM_EIO, "shape.way in a path: nothing to rewrite");
    cli_eval_field_flags(&plain);
    CHECKF(!strcmp(plain.msg, "shape.way in a path: nothing to rewrite"), "[%s]", plain.msg);
}
