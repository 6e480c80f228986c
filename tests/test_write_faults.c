/* Fault injection on the atomic write path (checkpoints and the cache): ENOSPC or EIO at every
 * operation of a save in turn (each write, flush, fsync, close, rename), SIGKILL at every
 * operation, and a real full or read-only tmpfs; and on the metrics log of `esmeta train`, run
 * in-process so that the seam sees it. Each time: the fault really fired, the save
 * fails with one line naming the file, the previous file is byte-identical and still resumes
 * to the same state, and no partial file is left under the real name. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/cli.h"
#include "core/atomic_file.h"
#include "esmeta.h"
#include "harness.h"

/* The seam's plan (test process only): fail operation number `at` (1-based) with `code`, or
 * SIGKILL the process there when code is -1; `seen` counts operations, `fired` names the one hit. */
static struct {
    int at, code, seen;
    char fired[16];
    const char *only; /* if set, only operations on paths containing it count */
} plan;

int esm_afile_fault(const char *op, const char *path)
{
    if (plan.only && !strstr(path, plan.only))
        return 0;
    if (++plan.seen != plan.at)
        return 0;
    snprintf(plan.fired, sizeof plan.fired, "%s", op);
    if (plan.code == -1)
        raise(SIGKILL);
    return plan.code;
}

static void arm(int at, int code)
{
    plan.at = at, plan.code = code, plan.seen = 0, plan.fired[0] = 0, plan.only = NULL;
}

static esm_dataset *tiny_dataset(void)
{
    static char *names[] = {"Latin/character01", "Latin/character02", "Greek/character01"};
    static uint8_t bg[] = {1, 1, 0}, pixels[6 * 28 * 28];
    static int n_images[] = {2, 2, 2};
    static size_t first[] = {0, 2, 4};
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(i * 7 % 251);
    static esm_dataset ds = {.height = 28, .width = 28, .channels = 1, .n_chars = 3,
                             .names = names, .background = bg, .n_images = n_images,
                             .first = first, .n_total = 6, .pixels = pixels};
    return &ds;
}

typedef struct {
    esm_dataset *ds;
    esm_split sp;
    esm_trainer *t;
} run;

static int open_run(esm_tctx *t_, run *r)
{
    esm_err err = {0};
    r->ds = tiny_dataset();
    r->t = NULL;
    if (esm_split_parse(r->ds, "Latin/character01/rot000\nLatin/character02/rot000\nGreek/character01/rot090\n",
                        "faults", &r->sp, &err) != ESM_OK)
        return esm_tfail(t_, __FILE__, __LINE__, "%s", err.msg), 0;
    esm_train_config cfg = esm_train_config_default(ESM_TRAINER_BACKPROP);
    cfg.net.width = 4;
    cfg.shape = (esm_episode_shape){2, 1, 1};
    cfg.steps = 4;
    cfg.episodes_per_step = 1;
    if (esm_trainer_create(&cfg, r->ds, &r->sp, &r->t, &err) != ESM_OK ||
        esm_trainer_step(r->t, NULL, &err) != ESM_OK)
        return esm_tfail(t_, __FILE__, __LINE__, "%s", err.msg), 0;
    return 1;
}

static void close_run(run *r)
{
    esm_trainer_free(r->t);
    esm_split_free(&r->sp);
}

static unsigned char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)*len + 1);
    if (b && fread(b, 1, (size_t)*len, f) != (size_t)*len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* 1 if path holds exactly the bytes of good. */
static int same_file(const char *path, const char *good)
{
    long a = -1, b = -2;
    unsigned char *x = slurp(path, &a), *y = slurp(good, &b);
    int same = x && y && a == b && memcmp(x, y, (size_t)a) == 0;
    free(x);
    free(y);
    return same;
}

/* The checkpoint at path resumes to the state saved in good: a save of the resumed trainer
 * gives good's bytes. */
static int resumes_to(esm_tctx *t_, run *r, const char *path, const char *good)
{
    char again[4200];
    snprintf(again, sizeof again, "%s/resumed.ckpt", esm_test_tmpdir());
    esm_trainer *t = NULL;
    esm_err err = {0};
    arm(0, 0);
    if (esm_trainer_resume(path, r->ds, &r->sp, &t, &err) != ESM_OK || esm_trainer_save(t, again, &err) != ESM_OK)
        return esm_tfail(t_, __FILE__, __LINE__, "%s", err.msg), esm_trainer_free(t), 0;
    esm_trainer_free(t);
    return same_file(again, good);
}

/* Saves a good checkpoint at path and a copy of it at good, then takes one more step so that
 * the next save would change the file. */
static int save_good(esm_tctx *t_, run *r, const char *path, const char *good)
{
    esm_err err = {0};
    arm(0, 0);
    if (esm_trainer_save(r->t, path, &err) != ESM_OK || esm_trainer_save(r->t, good, &err) != ESM_OK ||
        esm_trainer_step(r->t, NULL, &err) != ESM_OK)
        return esm_tfail(t_, __FILE__, __LINE__, "%s", err.msg), 0;
    return 1;
}

static void fail_every_operation(esm_tctx *t_, int code)
{
    run r;
    REQUIRE(open_run(t_, &r));
    char path[4200], good[4200];
    snprintf(path, sizeof path, "%s/run.ckpt", esm_test_tmpdir());
    snprintf(good, sizeof good, "%s/good.ckpt", esm_test_tmpdir());
    REQUIRE(save_good(t_, &r, path, good));
    int kinds = 0; /* bit per operation kind hit: write, flush, fsync, close, rename */
    const char *names[] = {"open", "write", "flush", "fsync", "close", "rename"};
    int k = 1;
    for (;; k++) {
        esm_err err = {0};
        arm(k, code);
        esm_status st = esm_trainer_save(r.t, path, &err);
        if (!plan.fired[0]) { /* k is past the last operation: the save must have worked */
            CHECKF(st == ESM_OK, "save with no fault: %s", err.msg);
            break;
        }
        for (int i = 0; i < 6; i++)
            if (!strcmp(plan.fired, names[i]))
                kinds |= 1 << i;
        CHECKF(st != ESM_OK, "%s fault at operation %d (%s) was not reported", strerror(code), k, plan.fired);
        CHECKF(strstr(err.msg, path) && strstr(err.msg, strerror(code)) && !strchr(err.msg, '\n'),
               "operation %d (%s): %s", k, plan.fired, err.msg);
        CHECKF(same_file(path, good), "operation %d (%s) changed the previous checkpoint", k, plan.fired);
        CHECK(esm_test_count_files(esm_test_tmpdir(), "run.ckpt.tmp") == 0);
    }
    CHECKF(kinds == 0x3f, "operation kinds hit: %#x of 0x3f over %d operations", kinds, k - 1);
    CHECK(k > 8);
    CHECK(resumes_to(t_, &r, good, good));
    close_run(&r);
}

TEST(write_faults_enospc_at_every_operation_of_a_checkpoint)
{
    fail_every_operation(t_, ENOSPC);
}

TEST(write_faults_eio_at_every_operation_of_a_checkpoint)
{
    fail_every_operation(t_, EIO);
}

TEST(write_faults_sigkill_at_every_operation_of_a_checkpoint)
{
    run r;
    REQUIRE(open_run(t_, &r));
    char path[4200], good[4200];
    snprintf(path, sizeof path, "%s/run.ckpt", esm_test_tmpdir());
    snprintf(good, sizeof good, "%s/good.ckpt", esm_test_tmpdir());
    REQUIRE(save_good(t_, &r, path, good));
    int killed = 0;
    for (int k = 1; k < 1000; k++) {
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            esm_err err = {0};
            arm(k, -1);
            _exit(esm_trainer_save(r.t, path, &err) == ESM_OK ? 0 : 1);
        }
        int ws = 0;
        waitpid(pid, &ws, 0);
        if (!WIFSIGNALED(ws)) { /* past the last operation: the save completed */
            CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
            break;
        }
        CHECK(WTERMSIG(ws) == SIGKILL);
        killed++;
        /* The seam runs before each operation, the rename included: a kill anywhere leaves the old file. */
        REQUIREF(same_file(path, good), "kill at operation %d changed the previous checkpoint", k);
        CHECK(resumes_to(t_, &r, path, good));
    }
    CHECKF(killed > 8, "%d kills", killed);
    close_run(&r);
}

/* The cache, whose writes are far larger: one fault per kind is enough to see each path. */
TEST(write_faults_cache_keeps_the_previous_cache)
{
    esm_dataset *ds = tiny_dataset();
    char path[4200], good[4200];
    snprintf(path, sizeof path, "%s/data.esmc", esm_test_tmpdir());
    snprintf(good, sizeof good, "%s/good.esmc", esm_test_tmpdir());
    esm_err err = {0};
    arm(0, 0);
    REQUIRE_OK(esm_cache_write(ds, path, &err), &err);
    REQUIRE_OK(esm_cache_write(ds, good, &err), &err);
    ds->n_images[0] = 1, ds->n_images[1] = 3; /* a different cache, same size */
    int k = 1;
    for (; k < 10000; k++) {
        arm(k, k % 2 ? ENOSPC : EIO);
        esm_status st = esm_cache_write(ds, path, &err);
        if (!plan.fired[0])
            break;
        CHECKF(st == ESM_EIO && strstr(err.msg, "data.esmc"), "operation %d (%s): %s", k, plan.fired, err.msg);
        CHECKF(same_file(path, good), "operation %d (%s) changed the previous cache", k, plan.fired);
    }
    ds->n_images[0] = 2, ds->n_images[1] = 2;
    CHECK(k > 5);
    esm_dataset *back = NULL; /* the last save, with no fault, wrote the new cache whole */
    REQUIRE_OK(esm_cache_read(path, &back, &err), &err);
    CHECK(back->n_images[0] == 1 && back->n_images[1] == 3);
    esm_dataset_free(back);
}

/* `esmeta train` (cmd_train, in a child process so that the seam is this test's) resuming run
 * dir with the metrics' k-th operation failing with code; returns its exit status and leaves
 * its stderr in err and the operation hit in fired ("" if none). */
static int train_child(const char *dir, int k, int code, char *err, size_t cap, char *fired)
{
    char errpath[4200], firedpath[4200];
    snprintf(errpath, sizeof errpath, "%s/child-stderr.txt", esm_test_tmpdir());
    snprintf(firedpath, sizeof firedpath, "%s/child-fired.txt", esm_test_tmpdir());
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (!freopen(errpath, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(99);
        /* One thread: libgomp's pool, started in this test process, does not survive a fork. */
        char *argv[] = {"train", "--data", (char *)esm_test_cache(), "--resume", (char *)dir, "--episodes", "4",
                        "--quiet", "--threads", "1", NULL};
        arm(k, code);
        plan.only = "metrics.jsonl";
        int rc = cmd_train(10, argv);
        fflush(NULL);
        FILE *f = fopen(firedpath, "w");
        if (f)
            fputs(plan.fired, f), fclose(f);
        _exit(rc);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    long elen = 0, flen = 0;
    unsigned char *e = slurp(errpath, &elen), *fd = slurp(firedpath, &flen);
    if (e)
        e[elen] = 0;
    if (fd)
        fd[flen] = 0;
    snprintf(err, cap, "%s", e ? (char *)e : "");
    snprintf(fired, 16, "%s", fd ? (char *)fd : "");
    free(e), free(fd);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* Every operation on metrics.jsonl while a run resumes from step 2 to 4 (rewriting the log to
 * the checkpoint's step, appending two lines, closing) fails in turn with ENOSPC, then EIO:
 * the run exits non-zero with one line naming metrics.jsonl and the error, its checkpoint is
 * the one it started from (or, for the closing flush and close, the finished run's), and that checkpoint
 * still resumes to the bits of a run never interrupted. */
TEST(write_faults_metrics_at_every_operation)
{
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    const char *tiny = "--width 8 --depth 2 --way 5 --shot 1 --query 2 --seed 3 --quiet --checkpoint-every 500";
    char args[8192], out[4096], err[4096], c2[4200], c4[4200], dir[4200], ckpt[4400], cmd[9000], fired[16];
    snprintf(args, sizeof args, "train --data %s %s --episodes 2 --out %s/m2", cache, tiny, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    snprintf(args, sizeof args, "train --data %s %s --episodes 4 --out %s/m4", cache, tiny, tmp);
    REQUIRE(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0);
    snprintf(c2, sizeof c2, "%s/m2/checkpoint.bin", tmp);
    snprintf(c4, sizeof c4, "%s/m4/checkpoint.bin", tmp);
    snprintf(dir, sizeof dir, "%s/mk", tmp);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.bin", dir);
    const char *names[] = {"open", "write", "flush", "fsync", "close", "rename"};
    int resumed = 0;
    for (int c = 0; c < 2; c++) {
        int code = c ? EIO : ENOSPC, kinds = 0, k = 1, first_done = 0;
        for (; k < 100; k++) {
            snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s/m2' '%s'", dir, tmp, dir);
            REQUIRE(system(cmd) == 0);
            int rc = train_child(dir, k, code, err, sizeof err, fired);
            if (!fired[0]) { /* past the last operation: the run finished */
                CHECKF(rc == 0 && same_file(ckpt, c4), "no fault: exit %d: %s", rc, err);
                break;
            }
            int kind_bit = 0;
            for (int i = 0; i < 6; i++)
                kind_bit |= !strcmp(fired, names[i]) << i;
            kinds |= kind_bit;
            size_t n = strlen(err);
            CHECKF(rc != 0, "%s at metrics operation %d (%s): exit 0", strerror(code), k, fired);
            CHECKF(n > 0 && strchr(err, '\n') == err + n - 1 && strstr(err, "metrics.jsonl") &&
                       strstr(err, strerror(code)),
                   "%s at metrics operation %d (%s): stderr [%s]", strerror(code), k, fired, err);
            int kept = same_file(ckpt, c2), done = same_file(ckpt, c4);
            CHECKF(kept || done, "operation %d (%s): the checkpoint is neither the previous one nor the finished "
                   "run's", k, fired);
            first_done = done && !first_done ? k : first_done;
            CHECK(esm_test_count_files(dir, "metrics.jsonl.tmp") == 0);
            if (kept && code == ENOSPC && !(resumed & kind_bit)) { /* still resumes to the uninterrupted bits */
                resumed |= kind_bit; /* once per kind of operation: each resume is a whole run */
                snprintf(args, sizeof args, "train --data %s --resume %s --episodes 4 --quiet", cache, dir);
                CHECKF(esm_test_run_cli(args, out, sizeof out, err, sizeof err) == 0 && same_file(ckpt, c4),
                       "operation %d (%s): resuming after the fault: %s", k, fired, err);
            }
        }
        /* rename and fsync are the rewrite's (atomic, on resume); the appends have no fsync */
        CHECKF(kinds == 0x3f, "%s: operation kinds hit %#x of 0x3f over %d operations", strerror(code), kinds, k - 1);
        CHECK(k > 10);
        /* Only the close (its flush, then the close itself) comes after the final save. */
        CHECKF(first_done == k - 2, "%s: the run saved its end before metrics operation %d of %d", strerror(code),
               first_done, k - 1);
    }
}

/* esmeta prepare --images streams batches into the temporary file, then rewrites the header:
 * an error or SIGKILL at any operation of that leaves the previous cache. */
static int make_image_set(const char *root)
{
    char p[4400];
    if (mkdir(root, 0755) != 0)
        return 0;
    for (int c = 0; c < 2; c++) {
        snprintf(p, sizeof p, "%s/c%d", root, c);
        if (mkdir(p, 0755) != 0)
            return 0;
        for (int k = 0; k < 6; k++) {
            snprintf(p, sizeof p, "%s/c%d/%d.png", root, c, k);
            if (!esm_test_write_png(p, 8 + c, 8 + k))
                return 0;
        }
    }
    return 1;
}

TEST(write_faults_streamed_prepare_keeps_the_previous_cache)
{
    char root[4200], path[4200], good[4200];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    snprintf(path, sizeof path, "%s/set.esmc", esm_test_tmpdir());
    snprintf(good, sizeof good, "%s/good.esmc", esm_test_tmpdir());
    REQUIRE(make_image_set(root));
    esm_images_opts o = {.shape = {.channels = 1, .height = 6, .width = 6}, .threads = 1, .batch_bytes = 4 * 36};
    esm_err err = {0};
    arm(0, 0);
    REQUIRE_OK(esm_images_prepare(root, NULL, 0, &o, NULL, 0, path, NULL, &err), &err);
    REQUIRE_OK(esm_images_prepare(root, NULL, 0, &o, NULL, 0, good, NULL, &err), &err);
    o.normalize = 1; /* a different cache, same size */
    int k = 1, killed = 0;
    for (; k < 1000; k++) {
        arm(k, k % 2 ? ENOSPC : EIO);
        esm_status st = esm_images_prepare(root, NULL, 0, &o, NULL, 0, path, NULL, &err);
        if (!plan.fired[0])
            break;
        CHECKF(st == ESM_EIO && strstr(err.msg, "set.esmc"), "operation %d (%s): %s", k, plan.fired, err.msg);
        CHECKF(same_file(path, good), "operation %d (%s) changed the previous cache", k, plan.fired);
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            arm(k, -1);
            _exit(esm_images_prepare(root, NULL, 0, &o, NULL, 0, path, NULL, &err) == ESM_OK ? 0 : 1);
        }
        int ws = 0;
        waitpid(pid, &ws, 0);
        killed += WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
        CHECKF(same_file(path, good), "SIGKILL at operation %d changed the previous cache", k);
    }
    /* open, header, 3 batches, the header again, the CRC, flush, fsync, close, rename */
    CHECKF(k == 12 && killed == 11, "%d operations, %d kills", k - 1, killed);
    esm_dataset *back = NULL; /* the last run, with no fault, wrote the new cache whole */
    REQUIRE_OK(esm_cache_read(path, &back, &err), &err);
    CHECK(back->normalize == 1 && back->n_total == 12);
    esm_dataset_free(back);
}
