/* Training through the command line: resume, kills, non-finite stops, checkpoints, eval, embed. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "esmeta.h"
#include "harness.h"
#include "train/ckpt_file.h"

/* A small, fast configuration: width 8, depth 2, 5-way 1-shot 2-query episodes. */
#define TINY "--width 8 --depth 2 --way 5 --shot 1 --query 2 --seed 3 --quiet"

static int run_ok(esm_tctx *t_, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_ok(esm_tctx *t_, const char *fmt, ...)
{
    char args[8192], out[4096], err[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int rc = esm_test_run_cli(args, out, sizeof out, err, sizeof err);
    if (rc != 0)
        esm_tfail(t_, __FILE__, __LINE__, "esmeta %s -> exit %d: %s", args, rc, err);
    return rc == 0;
}

static int same_file(const char *a, const char *b)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* esmeta with the formatted arguments must fail with one line naming n1 (and n2 if given). */
static void expect_error(esm_tctx *t_, const char *n1, const char *n2, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void expect_error(esm_tctx *t_, const char *n1, const char *n2, const char *fmt, ...)
{
    char args[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    esm_test_expect_cli_error(t_, args, n1, n2);
}

/* A run of `total` generations and the same run stopped at `first` and resumed to `total` end in
 * the same checkpoint bytes; 0 (and a failure) if not. dir/name and dir/name-split hold them. */
static int split_run_matches(esm_tctx *t_, const char *flags, int first, int total, const char *name)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    char a[4200], b[4200];
    if (!run_ok(t_, "train --data %s %s --generations %d --out %s/%s", cache, flags, total, tmp, name) ||
        !run_ok(t_, "train --data %s %s --generations %d --out %s/%s-split", cache, flags, first, tmp, name) ||
        !run_ok(t_, "train --data %s --resume %s/%s-split --generations %d", cache, tmp, name, total))
        return 0;
    snprintf(a, sizeof a, "%s/%s/checkpoint.bin", tmp, name);
    snprintf(b, sizeof b, "%s/%s-split/checkpoint.bin", tmp, name);
    CHECKF(same_file(a, b), "%s: stopped at %d and resumed to %d differs from one run", name, first, total);
    return same_file(a, b);
}


TEST(train_resume_is_bit_identical)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    REQUIRE(run_ok(t_, "train --data %s %s --episodes 8 --out %s/straight", cache, TINY, tmp));
    REQUIRE(run_ok(t_, "train --data %s %s --episodes 3 --out %s/split", cache, TINY, tmp));
    REQUIRE(run_ok(t_, "train --data %s --resume %s/split --episodes 8 --quiet", cache, tmp));
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/straight/checkpoint.bin", tmp);
    snprintf(b, sizeof b, "%s/split/checkpoint.bin", tmp);
    CHECK(same_file(a, b));
    snprintf(b, sizeof b, "%s/split/metrics.jsonl", tmp);
    CHECK(esm_test_count_lines(b, "\"episode\":") == 8);
    CHECK(esm_test_count_lines(b, "\"step\":8,") == 1);
    /* And different seeds really do differ. */
    REQUIRE(run_ok(t_, "train --data %s %s --episodes 8 --seed 4 --out %s/other", cache, TINY, tmp));
    snprintf(b, sizeof b, "%s/other/checkpoint.bin", tmp);
    CHECK(!same_file(a, b));
}

TEST(train_killed_repeatedly_resumes_identically)
{
    /* kill -9 at arbitrary moments while a checkpoint is saved after every step (so kills land
     * in saves too): every checkpoint left behind must load, and resuming until done must give
     * the same bits as an uninterrupted run. */
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    const char *model = "--width 16 --depth 4 --way 5 --shot 1 --query 2 --seed 5 --quiet";
    REQUIRE(run_ok(t_, "train --data %s %s --episodes 30 --out %s/straight", cache, model, tmp));
    char ckpt[4200], metrics[4200], cmd[16384];
    snprintf(ckpt, sizeof ckpt, "%s/killed/checkpoint.bin", tmp);
    snprintf(metrics, sizeof metrics, "%s/killed/metrics.jsonl", tmp);
    int kills = 0;
    for (int round = 0; round < 40 && esm_test_count_lines(metrics, "\"step\":30,") == 0; round++) {
        int fresh = access(ckpt, F_OK) != 0;
        /* Kill only once the run has made progress (a new metrics line), then after a short
         * varying delay: slow builds (sanitizers, a busy machine) still advance every round. */
        snprintf(cmd, sizeof cmd,
                 "(%s train --data %s %s --episodes 30 --checkpoint-every 1 %s %s/killed >/dev/null 2>&1 & p=$!; "
                 "lines() { cat %s 2>/dev/null | wc -l; }; n0=$(lines); i=0; "
                 "while [ $i -lt 1500 ] && [ $(lines) -le $n0 ] && kill -0 $p 2>/dev/null; do sleep 0.02; "
                 "i=$((i+1)); done; sleep 0.0%d; kill -9 $p; wait $p) 2>/dev/null",
                 esm_test_cli(), cache, fresh ? model : "--quiet", fresh ? "--out" : "--resume", tmp, metrics,
                 round % 10);
        kills += system(cmd) != 0;
        if (access(ckpt, F_OK) == 0) {
            esm_model m;
            esm_err err = {0};
            REQUIREF(esm_model_load(ckpt, &m, &err) == ESM_OK, "after kill %d: %s", kills, err.msg);
            esm_model_free(&m);
        }
    }
    CHECKF(kills > 0, "no run was killed");
    REQUIRE(access(ckpt, F_OK) == 0);
    REQUIRE(run_ok(t_, "train --data %s --resume %s/killed --quiet", cache, tmp));
    char a[4200];
    snprintf(a, sizeof a, "%s/straight/checkpoint.bin", tmp);
    CHECK(same_file(a, ckpt));
    snprintf(a, sizeof a, "%s/killed", tmp);
    CHECK(esm_test_count_files(a, "checkpoint.bin.tmp") == 0);
}

TEST(train_nonfinite_loss_stops_and_keeps_good_checkpoint)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char args[8192], out[4096], err[4096];
    snprintf(args, sizeof args, "train --data %s %s --episodes 20 --lr 1e30 --out %s/nan", cache, TINY, tmp);
    int rc = esm_test_run_cli(args, out, sizeof out, err, sizeof err);
    CHECK(rc == 1);
    CHECKF(strstr(err, "not finite") != NULL, "stderr: %s", err);
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/nan/checkpoint.bin", tmp);
    esm_model m;
    esm_err e = {0};
    REQUIRE_OK(esm_model_load(ckpt, &m, &e), &e);
    int finite = 1;
    for (size_t i = 0; i < m.net.n_params; i++)
        finite &= isfinite(m.params[i]);
    for (size_t i = 0; i < m.net.n_bn; i++)
        finite &= isfinite(m.bn_running[i]);
    CHECK(finite);
    esm_model_free(&m);
}

static void damaged_copy(esm_tctx *t_, const char *from, const char *to, long keep, long flip_at)
{
    REQUIRE(esm_test_copy_file(from, to, keep));
    if (flip_at >= 0) {
        FILE *f = fopen(to, "r+b");
        REQUIRE(f);
        fseek(f, flip_at, SEEK_SET);
        int c = fgetc(f);
        fseek(f, flip_at, SEEK_SET);
        fputc(c ^ 0x11, f);
        fclose(f);
    }
}

TEST(eval_rejects_bad_checkpoints)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    REQUIRE(run_ok(t_, "train --data %s %s --episodes 2 --out %s/run", cache, TINY, tmp));
    char good[4200], bad[4200], args[9000];
    snprintf(good, sizeof good, "%s/run/checkpoint.bin", tmp);
    snprintf(bad, sizeof bad, "%s/truncated.bin", tmp);
    damaged_copy(t_, good, bad, 3000, -1);
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s --episodes 5", cache, bad);
    esm_test_expect_cli_error(t_, args, "truncated.bin", "truncated");
    snprintf(bad, sizeof bad, "%s/corrupt.bin", tmp);
    damaged_copy(t_, good, bad, -1, 2000);
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s --episodes 5", cache, bad);
    esm_test_expect_cli_error(t_, args, "corrupt.bin", "checksum");
    snprintf(bad, sizeof bad, "%s/version.bin", tmp);
    damaged_copy(t_, good, bad, -1, 8);
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s --episodes 5", cache, bad);
    esm_test_expect_cli_error(t_, args, "version.bin", "version");
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s --episodes 5", cache, cache);
    esm_test_expect_cli_error(t_, args, "not an esmeta checkpoint", NULL);
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s/none.bin", cache, tmp);
    esm_test_expect_cli_error(t_, args, "none.bin", NULL);

    /* A checkpoint whose parameters do not fit the model its configuration describes. */
    esm_ckpt ck;
    esm_err e = {0};
    REQUIRE_OK(esm_ckpt_read(good, &ck, &e), &e);
    const void *cfg;
    size_t len;
    REQUIRE_OK(esm_ckpt_get(&ck, "config", 0, &cfg, &len, &e), &e);
    char text[4096];
    snprintf(text, sizeof text, "%.*s", (int)len, (const char *)cfg);
    char *w = strstr(text, "\nwidth=8\n");
    REQUIRE(w);
    memcpy(w, "\nwidth=9\n", 9);
    esm_ckpt_section s[16];
    for (int i = 0; i < ck.n; i++) {
        s[i] = ck.sections[i];
        if (!strcmp(s[i].tag, "config"))
            s[i].data = text, s[i].len = strlen(text);
    }
    snprintf(bad, sizeof bad, "%s/shape.bin", tmp);
    REQUIRE_OK(esm_ckpt_write(bad, s, ck.n, &e), &e);
    esm_ckpt_free(&ck);
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s --episodes 5", cache, bad);
    esm_test_expect_cli_error(t_, args, "shape.bin", "another model shape");
}

TEST(train_rejects_bad_arguments)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    expect_error(t_, "--lr", "positive", "train --data %s %s --episodes 2 --lr -1 --out %s/a", cache, TINY, tmp);
    expect_error(t_, "--way 0", "at least 1", "train --data %s --width 8 --depth 2 --way 0 --out %s/a", cache, tmp);
    expect_error(t_, "--trainer 'sgd'", "backprop or es", "train --data %s --trainer sgd --out %s/a", cache, tmp);
    expect_error(t_, "--out", "--resume", "train --data %s --episodes 2", cache);
    expect_error(t_, "--depth 20", NULL, "train --data %s --width 8 --depth 20 --out %s/a", cache, tmp);
    REQUIRE(run_ok(t_, "train --data %s %s --episodes 1 --out %s/done", cache, TINY, tmp));
    expect_error(t_, "already holds a run", "--resume", "train --data %s %s --episodes 1 --out %s/done", cache, TINY,
                 tmp);
    expect_error(t_, "--resume", "configuration saved", "train --data %s --resume %s/done --way 20", cache, tmp);
    expect_error(t_, "--resume", NULL, "train --data %s --resume %s/done --split test", cache, tmp);
    expect_error(t_, "--chunk", "--trainer es", "train --data %s %s --episodes 1 --chunk 8 --out %s/b", cache, TINY,
                 tmp);
    expect_error(t_, "--chunk -3", "0 (whole episodes) or positive",
                 "train --data %s --trainer es --width 8 --depth 2 --chunk -3 --out %s/b", cache, tmp);
}

/* --chunk streams ES episodes: the run trains, and the setting is part of the saved run. */
TEST(train_es_streamed_chunk)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    REQUIRE(run_ok(t_, "train --data %s --trainer es --width 8 --depth 2 --pop 4 --generations 2 --chunk 7 --quiet "
                   "--out %s/s", cache, tmp));
    char args[9000];
    snprintf(args, sizeof args, "train --data %s --resume %s/s --chunk 9", cache, tmp);
    esm_test_expect_cli_error(t_, args, "--resume", "configuration saved");
    REQUIRE(run_ok(t_, "train --data %s --resume %s/s --generations 3", cache, tmp));
    char path[4096];
    snprintf(path, sizeof path, "%s/s/metrics.jsonl", tmp);
    CHECK(esm_test_count_lines(path, "\"loss\"") == 3);
}

/* --shaping zscore is saved with the run: it trains otherwise than ranks, and a split run
 * resumes into the same bits; wrong uses are one-line errors naming the flag. */
TEST(train_es_zscore_shaping)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    const char *es = "--trainer es --width 8 --depth 2 --way 5 --shot 1 --query 2 --pop 6 --seed 3 --quiet";
    char z[512];
    snprintf(z, sizeof z, "%s --shaping zscore", es);
    REQUIRE(split_run_matches(t_, z, 2, 4, "z"));
    REQUIRE(run_ok(t_, "train --data %s %s --generations 4 --out %s/ranks", cache, es, tmp));
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/z/checkpoint.bin", tmp);
    snprintf(b, sizeof b, "%s/ranks/checkpoint.bin", tmp);
    CHECK(!same_file(a, b));
    esm_model m;
    esm_err err;
    REQUIRE_OK(esm_model_load(a, &m, &err), &err);
    CHECK(m.cfg.shaping == ESM_ES_SHAPING_ZSCORE);
    esm_model_free(&m);
    expect_error(t_, "--shaping 'ranked'", "ranks or zscore", "train --data %s %s --shaping ranked --out %s/bad", cache,
                 es, tmp);
    expect_error(t_, "--shaping", "snes", "train --data %s %s --strategy snes --shaping zscore --out %s/bad", cache, es,
                 tmp);
    expect_error(t_, "--shaping", "--trainer es", "train --data %s %s --shaping zscore --episodes 1 --out %s/bad",
                 cache, TINY, tmp);
    expect_error(t_, "--resume", "configuration saved", "train --data %s --resume %s/z --shaping ranks", cache, tmp);
}

/* --sigma-halve-every: the generations' sigma follows the schedule, and a split run resumes
 * into the same bits (the schedule is recomputed, not saved). */
TEST(train_es_sigma_schedule)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    const char *es = "--trainer es --width 8 --depth 2 --way 5 --shot 1 --query 2 --pop 6 --seed 3 --quiet "
                     "--sigma 0.04 --sigma-halve-every 2";
    REQUIRE(split_run_matches(t_, es, 3, 5, "sig"));
    char path[4200];
    snprintf(path, sizeof path, "%s/sig/metrics.jsonl", tmp);
    const char *want[] = {"\"sigma\":0.04,", "\"sigma\":0.04,", "\"sigma\":0.02,", "\"sigma\":0.02,",
                          "\"sigma\":0.01,"};
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"generation\"")) {
            CHECKF(n < 5 && strstr(line, want[n]), "generation %d: %s (wanted %s)", n + 1, line, n < 5 ? want[n] : "");
            n++;
        }
    fclose(f);
    CHECK(n == 5);
    expect_error(t_, "--sigma-halve-every", "snes", "train --data %s %s --strategy snes --out %s/bad", cache, es, tmp);
}

/* The closing progress line reports the last step's real rate, not 0 img/s. */
TEST(train_final_progress_line_has_a_rate)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char args[9000], out[4096], err[8192];
    snprintf(args, sizeof args, "train --data %s --trainer es --width 8 --depth 2 --pop 4 --generations 2 --out %s/p",
             cache, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    const char *line = strstr(err, "generation 2/2");
    REQUIRE(line != NULL);
    const char *lr = strstr(line, " lr ");
    REQUIRE(lr != NULL);
    double lr_v = 0, rate = -1;
    CHECKF(sscanf(lr, " lr %lg %lg img/s", &lr_v, &rate) == 2 && rate > 0, "progress line: %.120s", line);
}

/* --time-limit ends a run that could go on for ever cleanly: exit 0, a checkpoint, not an
 * interruption, and --resume continues it. */
TEST(train_time_limit_stops_cleanly_and_resumes)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char args[9000], out[4096], err[8192];
    snprintf(args, sizeof args, "train --data %s --trainer es --pop 4 --generations 1000000000 --checkpoint-every 0 "
             "--centre-every 0 --time-limit 0.5 %s --out %s/tl", cache, TINY, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    CHECKF(strstr(out, "\"interrupted\":false") && strstr(out, "\"time_limited\":true"), "summary: %s", out);
    const char *st = strstr(out, "\"steps\":");
    long long steps = -1;
    REQUIRE(st && sscanf(st, "\"steps\":%lld", &steps) == 1);
    CHECKF(steps >= 1 && steps < 1000000000LL, "steps %lld", steps);
    char path[4200];
    snprintf(path, sizeof path, "%s/tl/metrics.jsonl", tmp);
    CHECK(esm_test_count_lines(path, "\"generation\":") == steps);
    snprintf(args, sizeof args, "train --data %s --resume %s/tl --generations %lld --quiet", cache, tmp, steps + 2);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    char want[64];
    snprintf(want, sizeof want, "\"steps\":%lld,", steps + 2);
    CHECKF(strstr(out, want) && strstr(out, "\"time_limited\":false"), "resumed summary: %s", out);
    CHECK(esm_test_count_lines(path, "\"generation\":") == steps + 2);
    snprintf(args, sizeof args, "train --data %s --trainer es --time-limit -1 --out %s/tl2", cache, tmp);
    CHECK(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 2 && strstr(err, "--time-limit"));
}

/* Vinyals' val lies inside trainval: an evaluation there is not a validation, so the trainer
 * refuses it unless asked, then labels it; on a held-out split the lines say so. */
TEST(train_refuses_validation_on_training_classes)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char args[9000], out[4096], err[8192], path[4200];
    snprintf(args, sizeof args, "train --data %s %s --episodes 2 --eval-every 1 --eval-episodes 2 --out %s/seen",
             cache, TINY, tmp);
    CHECK(esm_test_run_cli(args, out, sizeof out, err, sizeof err) != 0 && strstr(err, "not held out") &&
          strstr(err, "--split trainval"));
    snprintf(path, sizeof path, "%s/seen", tmp);
    CHECKF(access(path, F_OK) != 0, "a refused run left its folder %s", path);
    snprintf(args, sizeof args, "train --data %s %s --episodes 2 --eval-every 1 --eval-episodes 2 "
             "--eval-seen-classes --out %s/seen2", cache, TINY, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    snprintf(path, sizeof path, "%s/seen2/metrics.jsonl", tmp);
    CHECK(esm_test_count_lines(path, "\"eval_split\":\"val\",\"held_out\":false") == 2);
    snprintf(args, sizeof args, "train --data %s %s --split train --episodes 2 --eval-every 1 --eval-episodes 2 "
             "--out %s/held", cache, TINY, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    snprintf(path, sizeof path, "%s/held/metrics.jsonl", tmp);
    CHECK(esm_test_count_lines(path, "\"eval_split\":\"val\",\"held_out\":true") == 2);
}

/* The evaluation's episodes are checked against its split before training starts, in its own flags,
 * and a refused run leaves no folder behind. */
TEST(train_refuses_an_eval_shape_its_split_cannot_give)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char args[9000], path[4200];
    snprintf(args, sizeof args, "train --data %s %s --split train --episodes 2 --eval-every 2 --eval-way 5000 "
             "--out %s/eval-way", cache, TINY, tmp);
    esm_test_expect_cli_error(t_, args, "--eval-way 5000", "--eval-split val");
    snprintf(path, sizeof path, "%s/eval-way", tmp);
    CHECKF(access(path, F_OK) != 0, "a refused run left its folder %s", path);
    snprintf(args, sizeof args, "train --data %s %s --split train --episodes 2 --eval-every 2 --eval-shot 19 "
             "--eval-query 2 --out %s/eval-shot", cache, TINY, tmp);
    esm_test_expect_cli_error(t_, args, "--eval-shot 19 + --eval-query 2", NULL);
}

/* A budget in member-image forwards buys whole generations: pop 4 x 5-way (1 + 2) = 60 a generation. */
TEST(train_budget_forwards_sets_the_generations)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char args[9000], out[4096], err[8192];
    snprintf(args, sizeof args, "train --data %s --trainer es --pop 4 --centre-every 0 --budget-forwards 200 %s "
             "--out %s/bf", cache, TINY, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    CHECKF(strstr(out, "\"steps\":3,\"of\":3,"), "summary: %s", out);
    snprintf(args, sizeof args, "train --data %s --trainer es --pop 4 --budget-forwards 59 %s --out %s/bf2", cache,
             TINY, tmp);
    CHECK(esm_test_run_cli(args, out, sizeof out, err, sizeof err) != 0 && strstr(err, "costs 60"));
}

TEST(eval_is_seeded_and_thread_count_invariant)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    REQUIRE(run_ok(t_, "train --data %s %s --episodes 5 --out %s/run", cache, TINY, tmp));
    char args[9000], one[4096], two[4096], other[4096], err[4096];
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s/run/checkpoint.bin --episodes 40 --threads 1", cache, tmp);
    REQUIRE(esm_test_run_cli(args, one, sizeof one, err, sizeof err) == 0);
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s/run/checkpoint.bin --episodes 40 --threads 2", cache, tmp);
    REQUIRE(esm_test_run_cli(args, two, sizeof two, err, sizeof err) == 0);
    snprintf(args, sizeof args, "eval --data %s --checkpoint %s/run/checkpoint.bin --episodes 40 --seed 9", cache, tmp);
    REQUIRE(esm_test_run_cli(args, other, sizeof other, err, sizeof err) == 0);
    /* Identical up to the timing field. */
    *strstr(one, ",\"seconds\"") = 0;
    *strstr(two, ",\"seconds\"") = 0;
    CHECKF(!strcmp(one, two), "%s\nvs\n%s", one, two);
    double acc = strtod(strstr(one, "\"accuracy\":") + 11, NULL), ci = strtod(strstr(one, "\"ci95\":") + 7, NULL);
    CHECKF(acc > 0.2 && acc <= 1.0 && ci > 0 && ci < 0.2, "%s", one);
    CHECK(strstr(other, "\"seed\":9") != NULL);
}

TEST(embed_uses_the_training_preprocessing)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir(), *data = esm_test_data_dir();
    REQUIRE(cache && data);
    REQUIRE(run_ok(t_, "train --data %s %s --episodes 3 --out %s/run", cache, TINY, tmp));
    /* Extract one drawing from the official zip as a user would have it. */
    char zpath[4200], png[4200];
    snprintf(zpath, sizeof zpath, "%s/images_background.zip", data);
    snprintf(png, sizeof png, "%s/0709_05.png", tmp);
    int zerr;
    zip_t *z = zip_open(zpath, ZIP_RDONLY, &zerr);
    REQUIRE(z);
    const char *entry = "images_background/Alphabet_of_the_Magi/character01/0709_05.png";
    zip_stat_t st;
    REQUIRE(zip_stat(z, entry, 0, &st) == 0);
    unsigned char *buf = malloc(st.size);
    zip_file_t *zf = zip_fopen(z, entry, 0);
    REQUIRE(buf && zf && zip_fread(zf, buf, st.size) == (zip_int64_t)st.size);
    zip_fclose(zf);
    zip_discard(z);
    FILE *f = fopen(png, "wb");
    REQUIRE(f && fwrite(buf, 1, st.size, f) == st.size);
    fclose(f);
    free(buf);
    char args[9000], out[16384], err[4096];
    snprintf(args, sizeof args, "embed --checkpoint %s/run/checkpoint.bin %s", tmp, png);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    /* The same drawing through the dataset and the library. */
    esm_model m;
    esm_err e = {0};
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/run/checkpoint.bin", tmp);
    REQUIRE_OK(esm_model_load(ckpt, &m, &e), &e);
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    int chr = -1;
    for (int i = 0; i < ds->n_chars && chr < 0; i++)
        if (!strcmp(ds->names[i], "Alphabet_of_the_Magi/character01"))
            chr = i;
    REQUIRE(chr >= 0);
    float x[784], emb[512];
    esm_image_to_float(ds, chr, 4, 0, x);
    esm_net_ws *ws;
    REQUIRE_OK(esm_net_ws_create(&m.net, 1, 0, &ws, &e), &e);
    REQUIRE_OK(esm_net_forward(&m.net, m.params, m.bn_running, ws, x, 1, ESM_BN_EVAL, emb, &e), &e);
    char *p = strchr(out, '\t');
    REQUIRE(p && !strncmp(out, png, strlen(png)));
    int n = 0;
    double worst = 0;
    for (char *q = p + 1; n < m.net.emb_dim; n++) {
        char *end;
        double v = strtod(q, &end);
        if (end == q)
            break;
        worst = fmax(worst, fabs(v - emb[n]));
        q = end;
    }
    CHECK(n == m.net.emb_dim);
    CHECKF(worst < 1e-5, "largest difference %g", worst);
    esm_net_ws_free(ws);
    esm_dataset_free(ds);
    esm_model_free(&m);
    snprintf(args, sizeof args, "embed --checkpoint %s %s/missing.png", ckpt, tmp);
    esm_test_expect_cli_error(t_, args, "missing.png", NULL);
}
