/* esmeta prepare --images streams the decoded images into the cache: the file is the same as the
 * one written from a set held in memory, a failure part-way leaves the previous cache, and the
 * memory used does not grow with the number of images. */
#define _DEFAULT_SOURCE /* wait4 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "esmeta.h"
#include "harness.h"

/* n_classes folders of per_class 8x8 RGB PNGs, each image different. */
static int make_set(const char *root, int n_classes, int per_class)
{
    char p[4400];
    if (mkdir(root, 0755) != 0)
        return 0;
    for (int c = 0; c < n_classes; c++) {
        snprintf(p, sizeof p, "%s/class%02d", root, c);
        if (mkdir(p, 0755) != 0)
            return 0;
        for (int k = 0; k < per_class; k++) {
            uint8_t px[8 * 8 * 3];
            for (int i = 0; i < 8 * 8 * 3; i++)
                px[i] = (uint8_t)((i * 29 + c * 71 + k * 13) % 256);
            png_image img = {.version = PNG_IMAGE_VERSION, .width = 8, .height = 8, .format = PNG_FORMAT_RGB};
            snprintf(p, sizeof p, "%s/class%02d/%03d.png", root, c, k);
            if (!png_image_write_to_file(&img, p, 0, px, 0, NULL))
                return 0;
        }
    }
    return 1;
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF;) {
        ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

TEST(images_stream_cache_matches_in_memory_cache)
{
    char root[4200], mem[4200], streamed[4200];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    snprintf(mem, sizeof mem, "%s/mem.esmc", esm_test_tmpdir());
    snprintf(streamed, sizeof streamed, "%s/streamed.esmc", esm_test_tmpdir());
    REQUIRE(make_set(root, 5, 9));
    /* 16x16x3 bytes an image, 7 images a batch: 45 images are 7 batches, the last one short */
    esm_images_opts o = {.shape = {.channels = 3, .height = 16, .width = 16}, .normalize = 1, .threads = 2,
                         .batch_bytes = 7 * 16 * 16 * 3 + 5};
    const double ratio[3] = {0.6, 0.2, 0.2};
    esm_err err = {0};
    esm_dataset *ds = NULL, *info = NULL;
    REQUIRE_OK(esm_dataset_from_images(root, &o, &ds, &err), &err);
    REQUIRE_OK(esm_dataset_split_by_ratio(ds, ratio, 4, &err), &err);
    REQUIRE_OK(esm_cache_write(ds, mem, &err), &err);
    REQUIRE_OK(esm_images_prepare(root, NULL, 0, &o, ratio, 4, streamed, &info, &err), &err);
    CHECK(same_file(mem, streamed));
    CHECK(file_size(mem) > 45 * 16 * 16 * 3);
    CHECK(info->n_total == 45 && info->n_chars == 5 && info->n_splits == 3 && !info->pixels);
    CHECK(info->mean[0] == ds->mean[0] && info->std[2] == ds->std[2]);
    esm_dataset *back = NULL; /* and it reads back: header, statistics and the combined CRC */
    REQUIRE_OK(esm_cache_read(streamed, &back, &err), &err);
    CHECK(!memcmp(back->pixels, ds->pixels, 45 * 16 * 16 * 3));
    esm_dataset_free(back);
    esm_dataset_free(info);
    esm_dataset_free(ds);
}

/* A bad image in a late batch: batches before it are already in the temporary file, but the
 * cache at the path stays the previous one and no temporary is left behind. */
TEST(images_stream_failure_part_way_keeps_the_previous_cache)
{
    char root[4200], cache[4200], keep[4200], bad[4400], tmp[4300];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    snprintf(cache, sizeof cache, "%s/set.esmc", esm_test_tmpdir());
    snprintf(keep, sizeof keep, "%s/keep.esmc", esm_test_tmpdir());
    REQUIRE(make_set(root, 4, 10));
    esm_images_opts o = {.shape = {.channels = 3, .height = 12, .width = 12}, .threads = 2,
                         .batch_bytes = 5 * 12 * 12 * 3};
    esm_err err = {0};
    REQUIRE_OK(esm_images_prepare(root, NULL, 0, &o, NULL, 0, cache, NULL, &err), &err);
    REQUIRE_OK(esm_images_prepare(root, NULL, 0, &o, NULL, 0, keep, NULL, &err), &err);
    snprintf(bad, sizeof bad, "%s/class03/007.png", root); /* image 37 of 40: the eighth batch */
    FILE *f = fopen(bad, "wb");
    REQUIRE(f && fputs("\x89PNG\r\n\x1a\n truncated", f) >= 0 && fclose(f) == 0);
    o.shape.height = 10; /* a different cache, were it written */
    esm_status st = esm_images_prepare(root, NULL, 0, &o, NULL, 0, cache, NULL, &err);
    CHECKF(st == ESM_EFORMAT && strstr(err.msg, "class03/007.png"), "%s: %s", esm_status_name(st), err.msg);
    CHECK(same_file(cache, keep));
    snprintf(tmp, sizeof tmp, "%s.tmp", cache);
    CHECK(access(tmp, F_OK) != 0);
}

/* Peak resident memory of `esmeta prepare --images root --size 256x256` (KiB), from wait4. */
static long prepare_maxrss_kib(const char *root, const char *out)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* AddressSanitizer holds freed blocks in a quarantine (256 MiB by default), which would
         * grow with the images decoded; the bound is about esmeta's memory, not the checker's. */
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[1024];
        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=1:thread_local_quarantine_size_kb=64", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(126);
        execl(esm_test_cli(), "esmeta", "prepare", "--images", root, "--size", "256x256", "--out", out,
              (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    struct rusage ru;
    if (wait4(pid, &ws, 0, &ru) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return -1;
    return ru.ru_maxrss;
}

/* 40 and 400 images of 256x256x3 (192 KiB each): held in memory, the larger set would need
 * 70 MiB more than the smaller; streamed, both stay within one 16 MiB batch. */
TEST(images_stream_memory_does_not_grow_with_the_set)
{
    char few[4200], many[4200], out[4200];
    snprintf(few, sizeof few, "%s/few", esm_test_tmpdir());
    snprintf(many, sizeof many, "%s/many", esm_test_tmpdir());
    snprintf(out, sizeof out, "%s/out.esmc", esm_test_tmpdir());
    REQUIRE(make_set(few, 4, 10) && make_set(many, 8, 50));
    long rss_few = prepare_maxrss_kib(few, out);
    REQUIREF(rss_few > 0, "esmeta prepare failed on the small set");
    long rss_many = prepare_maxrss_kib(many, out);
    REQUIREF(rss_many > 0, "esmeta prepare failed on the large set");
    long set_kib = 400L * 256 * 256 * 3 / 1024, growth = rss_many - rss_few;
    CHECKF(growth < set_kib / 4, "peak memory %ld KiB for 40 images, %ld KiB for 400: grew by %ld KiB, "
           "over a quarter of the larger set's %ld KiB", rss_few, rss_many, growth, set_kib);
    if (getenv("ESM_SHOW_RSS"))
        fprintf(stderr, "maxrss few %ld KiB, many %ld KiB, growth %ld KiB, set %ld KiB\n", rss_few, rss_many, growth,
                set_kib);
}
