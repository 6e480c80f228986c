/* The atomic write path on a real small file system: a tmpfs mounted by the test (root only,
 * in a mount namespace of its own so that nothing outlives the test process), filled up, then
 * remounted read-only (root ignores folder permissions, so only a read-only mount tests that). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esmeta.h"
#include "harness.h"

/* Mounts a tmpfs of `kb` KiB at dir; 0 with the reason in why when this process may not. */
static int mount_tmpfs_or_why(const char *dir, int kb, char *why, size_t cap)
{
    char opts[64];
    snprintf(opts, sizeof opts, "size=%dk", kb);
    if (geteuid() != 0 || unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mkdir(dir, 0755) != 0 || mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        snprintf(why, cap, "cannot mount a tmpfs here (%s; needs root and CAP_SYS_ADMIN)",
                 geteuid() != 0 ? "not root" : strerror(errno));
        return 0;
    }
    return 1;
}

/* The same, printing the reason when it cannot. */
static int mount_small_tmpfs(const char *dir, int kb)
{
    char why[200];
    if (mount_tmpfs_or_why(dir, kb, why, sizeof why))
        return 1;
    printf("    skipped: %s\n", why);
    return 0;
}

static esm_dataset *dataset_of(int per_char, uint8_t *pixels)
{
    static char *names[] = {"Latin/character01", "Latin/character02", "Greek/character01"};
    static uint8_t bg[] = {1, 1, 0};
    static int n_images[3];
    static size_t first[3];
    static esm_dataset ds;
    for (int i = 0; i < 3; i++)
        n_images[i] = per_char, first[i] = (size_t)i * per_char;
    ds = (esm_dataset){.height = 28, .width = 28, .channels = 1, .n_chars = 3, .names = names,
                       .background = bg, .n_images = n_images, .first = first,
                       .n_total = (size_t)3 * per_char, .pixels = pixels};
    return &ds;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

TEST(write_faults_full_then_read_only_tmpfs)
{
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/fs", esm_test_tmpdir());
    if (!mount_small_tmpfs(dir, 16))
        return;
    snprintf(path, sizeof path, "%s/data.esmc", dir);
    static uint8_t pixels[60 * 28 * 28];
    esm_err err = {0};
    REQUIRE_OK(esm_cache_write(dataset_of(2, pixels), path, &err), &err); /* 4.7 KB: fits */
    long good = file_size(path);
    /* 47 KB cannot fit in 16 KiB: the disk really fills up. */
    CHECK(esm_cache_write(dataset_of(20, pixels), path, &err) == ESM_EIO);
    CHECKF(strstr(err.msg, path) && strstr(err.msg, strerror(ENOSPC)) && !strchr(err.msg, '\n'), "%s", err.msg);
    CHECK(file_size(path) == good);
    CHECK(esm_test_count_files(dir, "data.esmc.tmp") == 0);
    esm_dataset *back = NULL;
    REQUIRE_OK(esm_cache_read(path, &back, &err), &err);
    CHECK(back->n_total == 6);
    esm_dataset_free(back);

    REQUIRE(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0);
    CHECK(esm_cache_write(dataset_of(1, pixels), path, &err) == ESM_EIO);
    CHECKF(strstr(err.msg, path) && strstr(err.msg, strerror(EROFS)), "%s", err.msg);
    CHECK(file_size(path) == good);
}

/* The CLI on a full disk (a 64 KiB tmpfs): one line naming the file that hit it, a non-zero
 * status, and nothing partial under a real name. Saving every 20 episodes, a checkpoint save
 * meets the full disk first (the old file and the new one must both fit) and the last good
 * checkpoint still loads; saving only at the end, the metrics meet it and no checkpoint exists. */
TEST(write_faults_cli_on_a_full_tmpfs)
{
    const char *cache = esm_test_cache();
    REQUIRE(cache);
    char dir[4200], args[9000], ckpt[4300];
    snprintf(dir, sizeof dir, "%s/fs", esm_test_tmpdir());
    if (!mount_small_tmpfs(dir, 64))
        return;
    const char *tiny = "--width 4 --depth 1 --way 2 --shot 1 --query 1 --seed 3 --quiet --episodes 3000";
    snprintf(args, sizeof args, "train --data %s %s --checkpoint-every 20 --out %s/ckpt", cache, tiny, dir);
    esm_test_expect_cli_error(t_, args, "ckpt/checkpoint.bin", strerror(ENOSPC));
    snprintf(ckpt, sizeof ckpt, "%s/ckpt/checkpoint.bin", dir);
    esm_model m;
    esm_err err = {0};
    REQUIRE_OK(esm_model_load(ckpt, &m, &err), &err);
    esm_model_free(&m);
    snprintf(args, sizeof args, "rm -rf %s/ckpt", dir);
    REQUIRE(system(args) == 0);

    snprintf(args, sizeof args, "train --data %s %s --checkpoint-every 100000 --out %s/metrics", cache, tiny, dir);
    esm_test_expect_cli_error(t_, args, "metrics/metrics.jsonl", strerror(ENOSPC));
    snprintf(ckpt, sizeof ckpt, "%s/metrics/checkpoint.bin", dir);
    CHECK(access(ckpt, F_OK) != 0);
    snprintf(ckpt, sizeof ckpt, "%s/metrics", dir);
    CHECK(esm_test_count_files(ckpt, "checkpoint.bin") == 0);
}

/* 1 if path holds exactly the bytes of good. */
static int same_bytes(const char *path, const char *good)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", path, good);
    return system(cmd) == 0;
}

/* scripts/plot-run on a tmpfs: a good plot, then the disk filled (the next PNG cannot fit), then
 * the file system read-only. Each failure: non-zero status, one stderr line naming the PNG and
 * the system's reason, the previous PNG byte-identical, and no partial file in the folder. */
TEST(write_faults_plot_on_a_full_then_read_only_tmpfs)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0)
        SKIP("gnuplot is missing (scripts/plot-run needs it)");
    const char *src = getenv("ESM_TEST_SRCDIR"), *tmp = esm_test_tmpdir();
    char script[4200], run[4200], dir[4200], png[4300], good[4300], args[24000], err[4096], why[200];
    snprintf(script, sizeof script, "%s%sscripts/plot-run", src ? src : "", src ? "/" : "");
    snprintf(run, sizeof run, "%s/run", tmp);
    REQUIRE(mkdir(run, 0755) == 0);
    snprintf(args, sizeof args, "%s/metrics.jsonl", run);
    FILE *m = fopen(args, "w");
    REQUIRE(m);
    for (int i = 1; i <= 60; i++) /* a run's training lines: a falling loss, a rising accuracy */
        fprintf(m, "{\"step\":%d,\"episode\":%d,\"loss\":%.4f,\"acc\":%.4f,\"lr\":0.001,\"elapsed_s\":%.2f}\n", i, i,
                2.0 / (1 + 0.1 * i), i / 60.0, 0.1 * i);
    REQUIRE(fclose(m) == 0);
    snprintf(dir, sizeof dir, "%s/fs", tmp);
    if (!mount_tmpfs_or_why(dir, 256, why, sizeof why))
        SKIP("%s", why);
    snprintf(png, sizeof png, "%s/curves.png", dir);
    snprintf(good, sizeof good, "%s/good.png", tmp);
    /* Also what the script did before: gnuplot wrote straight into the PNG. */
    snprintf(args, sizeof args, "%s '%s' '%s' 2>/dev/null && cp '%s' '%s'", script, png, run, png, good);
    REQUIRE(system(args) == 0);
    CHECK(file_size(png) > 1000);

    /* A longer, noisier run: its PNG would differ from the previous one and be larger. */
    snprintf(args, sizeof args, "%s/metrics.jsonl", run);
    REQUIRE((m = fopen(args, "a")));
    for (int i = 61; i <= 400; i++)
        fprintf(m, "{\"step\":%d,\"episode\":%d,\"loss\":%.4f,\"acc\":%.4f,\"lr\":0.001,\"elapsed_s\":%.2f}\n", i,
                i, 0.5 + 0.4 * ((i * 7919) % 13) / 13.0, ((i * 104729) % 17) / 17.0, 0.1 * i);
    REQUIRE(fclose(m) == 0);
    /* The disk is full: a file takes every block left. */
    snprintf(args, sizeof args, "head -c 1000000 /dev/zero > '%s/filler' 2>/dev/null", dir);
    CHECK(system(args) != 0);
    const struct {
        const char *what;
        int code;
    } cases[] = {{"full", ENOSPC}, {"read-only", EROFS}};
    for (int c = 0; c < 2; c++) {
        if (cases[c].code == EROFS)
            REQUIRE(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0);
        snprintf(args, sizeof args, "%s '%s' '%s'", script, png, run);
        char cmd[30000], errpath[4300];
        snprintf(errpath, sizeof errpath, "%s/plot-stderr.txt", tmp);
        snprintf(cmd, sizeof cmd, "%s 2>'%s' >/dev/null", args, errpath);
        int rc = system(cmd);
        FILE *e = fopen(errpath, "r");
        size_t n = e ? fread(err, 1, sizeof err - 1, e) : 0;
        err[n] = 0;
        if (e)
            fclose(e);
        CHECKF(rc != 0, "%s disk: plot-run exited 0", cases[c].what);
        CHECKF(n > 0 && strchr(err, '\n') == err + n - 1 && strstr(err, png) && strstr(err, strerror(cases[c].code)),
               "%s disk: stderr [%s]", cases[c].what, err);
        CHECKF(same_bytes(png, good), "%s disk: the previous PNG changed", cases[c].what);
        CHECKF(esm_test_count_files(dir, ".curves.png") == 0, "%s disk: a partial file is left", cases[c].what);
    }
}
