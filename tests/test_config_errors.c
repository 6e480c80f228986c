/* Configuration errors speak the library's language: every refused configuration value sets
 * esm_err.field to the member the caller set, the message names it by that name and never by a
 * CLI flag ("--pop"), and the CLI has a flag for it (cli/field_flags.c). Each row below takes one
 * validation path through the public API. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../cli/cli.h"
#include "harness.h"

static void expect_field(esm_tctx *t_, const char *what, esm_status st, const esm_err *err, esm_status code,
                         const char *field)
{
    CHECKF(st == code, "%s: expected %s, got %s: %s", what, esm_status_name(code), esm_status_name(st), err->msg);
    CHECKF(err->field && !strcmp(err->field, field), "%s: expected field %s, got %s: %s", what, field,
           err->field ? err->field : "none", err->msg);
    CHECKF(strstr(err->msg, field) != NULL, "%s: message does not name %s: %s", what, field, err->msg);
    CHECKF(strstr(err->msg, "--") == NULL, "%s: message speaks of a CLI flag: %s", what, err->msg);
    CHECKF(cli_field_flag(field) != NULL, "%s: the CLI has no flag for field %s", what, field);
}

/* One bad value of a training configuration: the field, as written in esm_train_config, and
 * the value (a number, or text for the string fields). */
typedef struct {
    esm_trainer_kind kind;
    const char *field;
    double value;
    const char *text;
    esm_status code;
} train_case;

static const train_case TRAIN_CASES[] = {
    {.kind = ESM_TRAINER_BACKPROP, .field = "steps", .value = -1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "lr", .value = 0, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "lr", .value = NAN, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "lr", .value = -1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "weight_decay", .value = -1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "episodes_per_step", .value = 0, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "stream_chunk", .value = -1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "stream_chunk", .value = 4, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "lr_halve_every", .value = -1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "device", .text = "tpu", .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "device", .text = "cuda", .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "device", .text = "tpu", .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "strategy", .text = "cma-es", .code = ESM_ENOTFOUND},
    {.kind = ESM_TRAINER_ES, .field = "pop", .value = 1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "pop", .value = ESM_MAX_POP + 2, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "pop", .value = 7, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "sigma", .value = 0, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "shaping", .value = 5, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "sigma_halve_every", .value = -1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "sigma_halve_every", .value = 10, .text = "pgpe", .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "shaping", .value = ESM_ES_SHAPING_ZSCORE, .text = "snes", .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "episodes_per_gen", .value = 0, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "centre_every", .value = -1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "shape.way", .value = 0, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "shape.way", .value = 100000, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "shape.shot", .value = 0, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "shape.shot", .value = 30, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_ES, .field = "shape.query", .value = -1, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "net.width", .value = 0, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "net.width", .value = 1000000000, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "net.depth", .value = 0, .code = ESM_EINVAL},
    {.kind = ESM_TRAINER_BACKPROP, .field = "net.depth", .value = 6, .code = ESM_EINVAL}, /* 28 px: 5 halvings */
};

/* Writes the case's value into the member its field names; 0 if the field is not known here. */
static int set_field(esm_train_config *c, const train_case *k)
{
    const char *f = k->field;
    double v = k->value;
    if (!strcmp(f, "steps")) c->steps = (int64_t)v;
    else if (!strcmp(f, "lr")) c->lr = (float)v;
    else if (!strcmp(f, "weight_decay")) c->weight_decay = (float)v;
    else if (!strcmp(f, "episodes_per_step")) c->episodes_per_step = (int)v;
    else if (!strcmp(f, "stream_chunk")) c->stream_chunk = (int)v;
    else if (!strcmp(f, "lr_halve_every")) c->lr_halve_every = (int64_t)v;
    else if (!strcmp(f, "device")) snprintf(c->device, sizeof c->device, "%s", k->text);
    else if (!strcmp(f, "strategy")) snprintf(c->strategy, sizeof c->strategy, "%s", k->text);
    else if (!strcmp(f, "pop")) c->pop = (int)v;
    else if (!strcmp(f, "sigma")) c->sigma = (float)v;
    else if (!strcmp(f, "shaping") || !strcmp(f, "sigma_halve_every")) { /* text: the strategy */
        if (!strcmp(f, "shaping"))
            c->shaping = (int)v;
        else
            c->sigma_halve_every = (int64_t)v;
        if (k->text)
            snprintf(c->strategy, sizeof c->strategy, "%s", k->text);
    }
    else if (!strcmp(f, "episodes_per_gen")) c->episodes_per_gen = (int)v;
    else if (!strcmp(f, "centre_every")) c->centre_every = (int)v;
    else if (!strcmp(f, "shape.way")) c->shape.way = (int)v;
    else if (!strcmp(f, "shape.shot")) c->shape.shot = (int)v;
    else if (!strcmp(f, "shape.query")) c->shape.query = (int)v;
    else if (!strcmp(f, "net.width")) c->net.width = (int)v;
    else if (!strcmp(f, "net.depth")) c->net.depth = (int)v;
    else return 0;
    return 1;
}

static esm_train_config small(esm_trainer_kind kind)
{
    esm_train_config c = esm_train_config_default(kind);
    c.net.width = 8, c.net.depth = 2, c.steps = 3, c.pop = 4;
    c.shape = (esm_episode_shape){5, 1, 2};
    return c;
}

TEST(config_errors_trainer_fields)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    esm_split sp = {0};
    esm_err err = {0};
    REQUIRE_OK(esm_split_get(ds, "trainval", &sp, &err), &err);
    for (size_t i = 0; i < sizeof TRAIN_CASES / sizeof *TRAIN_CASES; i++) {
        const train_case *k = &TRAIN_CASES[i];
        esm_train_config c = small(k->kind);
        if (!strcmp(k->field, "shape.shot") && k->value > 20)
            c.shape.query = 5; /* 30 + 5 images a class, of Omniglot's 20 */
        REQUIREF(set_field(&c, k), "row %zu: field %s is not a training configuration member", i, k->field);
        char what[96];
        snprintf(what, sizeof what, "row %zu (%s %s)", i, k->field, k->text ? k->text : "");
        esm_trainer *t = NULL;
        err = (esm_err){.field = "stale"};
        esm_status st = esm_trainer_create(&c, ds, &sp, &t, &err);
        expect_field(t_, what, st, &err, k->code, k->field);
        esm_trainer_free(t);
    }
    esm_split_free(&sp);
    esm_dataset_free(ds);
}

/* The paths outside esm_trainer_create: resuming, sharding, evaluation, episodes, the GPU
 * backend's limits, a user's image tree. */
/* TMP/tree/class{0,1}/0.png: the smallest class-folder set, for image-source errors; root gets its
 * path. 0 if it could not be made. */
static int make_two_class_tree(char *root, size_t cap)
{
    char path[4400];
    snprintf(root, cap, "%s/tree", esm_test_tmpdir());
    if (mkdir(root, 0755) != 0)
        return 0;
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/class%d", root, k);
        if (mkdir(path, 0755) != 0)
            return 0;
        snprintf(path, sizeof path, "%s/class%d/0.png", root, k);
        if (!esm_test_write_png(path, 6, 6))
            return 0;
    }
    return 1;
}

TEST(config_errors_other_paths)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    esm_split sp = {0}, test_sp = {0};
    esm_err err = {0};
    REQUIRE_OK(esm_split_get(ds, "trainval", &sp, &err), &err);
    REQUIRE_OK(esm_split_get(ds, "test", &test_sp, &err), &err);
    esm_train_config c = small(ESM_TRAINER_BACKPROP);
    esm_trainer *t = NULL, *r = NULL;
    REQUIRE_OK(esm_trainer_create(&c, ds, &sp, &t, &err), &err);
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/bp.ckpt", esm_test_tmpdir());
    REQUIRE_OK(esm_trainer_save(t, ckpt, &err), &err);

    esm_status st = esm_trainer_resume_on(ckpt, "tpu", ds, &sp, &r, &err);
    expect_field(t_, "resume on tpu", st, &err, ESM_EINVAL, "device");
    st = esm_trainer_resume_on(ckpt, "a-device-name-longer-than-the-field", ds, &sp, &r, &err);
    expect_field(t_, "resume on a long name", st, &err, ESM_EINVAL, "device");
    st = esm_trainer_resume_on(ckpt, "cuda", ds, &sp, &r, &err);
    expect_field(t_, "resume backprop on cuda", st, &err, ESM_EINVAL, "device");
    st = esm_trainer_resume(ckpt, ds, &test_sp, &r, &err);
    expect_field(t_, "resume on another split", st, &err, ESM_EMISMATCH, "split");
    CHECK(r == NULL);

    st = esm_trainer_set_shard(t, (esm_shard_mode)7, &err);
    expect_field(t_, "shard mode 7", st, &err, ESM_EINVAL, "shard_mode");

    esm_model_view m = esm_trainer_model(t);
    esm_eval_result res;
    st = esm_evaluate(&m.net, m.params, m.bn_running, ds, &test_sp, c.shape, 0, 1, 1, &res, &err);
    expect_field(t_, "evaluate 0 episodes", st, &err, ESM_EINVAL, "n_episodes");
    st = esm_evaluate(&m.net, m.params, m.bn_running, ds, &test_sp, (esm_episode_shape){5, 1, 0}, 2, 1, 1, &res, &err);
    expect_field(t_, "evaluate query 0", st, &err, ESM_EINVAL, "shape.query");
    st = esm_episode_check(&test_sp, (esm_episode_shape){5000, 1, 1}, &err);
    expect_field(t_, "episode of 5000 classes", st, &err, ESM_EINVAL, "shape.way");
    esm_episode ep;
    st = esm_episode_init(&ep, ds, (esm_episode_shape){5, -2, 1}, &err);
    expect_field(t_, "episode of -2 shots", st, &err, ESM_EINVAL, "shape.shot");
    esm_net net;
    st = esm_net_init(&net, &(esm_net_config){.in_channels = 1, .in_height = 28, .in_width = 28, .width = 8,
                                               .depth = 17}, &err);
    expect_field(t_, "net of depth 17", st, &err, ESM_EINVAL, "net.depth");
    esm_trainer_free(t);

    /* A GPU configuration where there is none (or a build without CUDA); only checked when refused. */
    c = small(ESM_TRAINER_ES);
    snprintf(c.device, sizeof c.device, "cuda");
    st = esm_trainer_create(&c, ds, &sp, &t, &err);
    if (st != ESM_OK)
        expect_field(t_, "es on cuda", st, &err, ESM_EUNSUPPORTED, "device");
    esm_trainer_free(t);
    c.stream_chunk = 4;
    st = esm_trainer_create(&c, ds, &sp, &t, &err);
    expect_field(t_, "streamed on cuda", st, &err, ESM_EUNSUPPORTED, "stream_chunk");
    esm_trainer_free(t);

    char root[4200];
    REQUIRE(make_two_class_tree(root, sizeof root));
    const struct {
        esm_image_shape shape;
        const char *field;
    } images[] = {
        {{.channels = 2, .height = 4, .width = 4}, "shape.channels"},
        {{.channels = 1, .height = 0, .width = 4}, "shape.height"},
        {{.channels = 3, .height = 4, .width = 5000}, "shape.width"},
    };
    for (size_t i = 0; i < sizeof images / sizeof *images; i++) {
        esm_images_opts o = {.shape = images[i].shape, .normalize = 1};
        esm_dataset *own = NULL;
        st = esm_dataset_from_images(root, &o, &own, &err);
        expect_field(t_, images[i].field, st, &err, ESM_EINVAL, images[i].field);
        esm_dataset_free(own);
    }
    esm_split_free(&test_sp);
    esm_split_free(&sp);
    esm_dataset_free(ds);
}

/* A failure that is not about a configuration value names no field, and a later success-path
 * failure does not keep the field of an earlier one. */
TEST(config_errors_other_failures_name_no_field)
{
    esm_err err = {0};
    esm_status st = esm_fail_field(&err, ESM_EINVAL, "pop", "pop 3 is odd");
    CHECK(st == ESM_EINVAL && err.field && !strcmp(err.field, "pop"));
    esm_dataset *ds = NULL;
    st = esm_dataset_load("/nonexistent/omniglot", NULL, &ds, &err);
    CHECKF(st == ESM_ENOTFOUND && err.field == NULL && !strstr(err.msg, "--"), "%s: %s", esm_status_name(st),
           err.msg);
}

/* Through the CLI the same errors name the flags, and --channels and --size, whose ranges the
 * library checks (not the option parser too), are refused with the flag the user typed. */
TEST(config_errors_cli_names_flags)
{
    char root[4200], cmd[9000];
    REQUIRE(make_two_class_tree(root, sizeof root));
    snprintf(cmd, sizeof cmd, "prepare --images %s --channels 2 --out %s/a.esmc", root, esm_test_tmpdir());
    esm_test_expect_cli_error(t_, cmd, "--channels 2", "use 1 (grey) or 3 (RGB)");
    snprintf(cmd, sizeof cmd, "prepare --images %s --size 0x4 --out %s/a.esmc", root, esm_test_tmpdir());
    esm_test_expect_cli_error(t_, cmd, "--size height 0", "1..4096");
    snprintf(cmd, sizeof cmd, "prepare --images %s --size 4x5000 --out %s/a.esmc", root, esm_test_tmpdir());
    esm_test_expect_cli_error(t_, cmd, "--size width 5000", "1..4096");
    const char *cache = esm_test_cache();
    REQUIRE(cache);
    snprintf(cmd, sizeof cmd, "train --data %s --trainer es --width 8 --depth 2 --pop 3 --out %s/r", cache,
             esm_test_tmpdir());
    esm_test_expect_cli_error(t_, cmd, "--pop 3 is odd", "use an even --pop (e.g. 4)");
    snprintf(cmd, sizeof cmd, "train --data %s --width 8 --depth 2 --weight-decay -1 --out %s/r", cache,
             esm_test_tmpdir());
    esm_test_expect_cli_error(t_, cmd, "--weight-decay -1", NULL);
    char out[4096], errb[4096];
    snprintf(cmd, sizeof cmd, "train --data %s --width 8 --depth 2 --way 5 --shot 1 --query 2 --episodes 1 --quiet "
             "--out %s/bp", cache, esm_test_tmpdir());
    REQUIRE(esm_test_run_cli(cmd, out, sizeof out, errb, sizeof errb) == 0);
    snprintf(cmd, sizeof cmd, "eval --data %s --checkpoint %s/bp/checkpoint.bin --episodes 0", cache,
             esm_test_tmpdir());
    esm_test_expect_cli_error(t_, cmd, "--episodes 0", "at least one episode");
}
