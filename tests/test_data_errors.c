/* Bad input through the command line: one clear line naming the culprit, a non-zero exit,
 * and nothing half-written left behind. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esmeta.h"
#include "harness.h"

static const char *mini(esm_tctx *t_, const char *name, esm_mini_layout layout)
{
    static char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", esm_test_tmpdir(), name);
    if (!esm_test_make_mini(dir, 2, layout, 0)) {
        esm_tfail(t_, __FILE__, __LINE__, "cannot build %s", dir);
        return NULL;
    }
    return dir;
}

TEST(bad_missing_data_path)
{
    esm_test_expect_cli_error(t_, "info --data /nonexistent/omniglot", "/nonexistent/omniglot", NULL);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "info --data %s", esm_test_tmpdir()); /* exists, but holds no Omniglot */
    esm_test_expect_cli_error(t_, cmd, "images_background", "fetch-omniglot");
    CHECK(setenv("ESMETA_DATA", "/nonexistent/env-data", 1) == 0);
    esm_test_expect_cli_error(t_, "info", "ESMETA_DATA", "/nonexistent/env-data");
}

static void expect_prepare_fails_cleanly(esm_tctx *t_, const char *dir, const char *n1, const char *n2)
{
    char out[4200], cmd[8600];
    snprintf(out, sizeof out, "%s/out.esmc", dir);
    snprintf(cmd, sizeof cmd, "prepare --data %s --out %s", dir, out);
    esm_test_expect_cli_error(t_, cmd, n1, n2);
    CHECK(access(out, F_OK) != 0);
    CHECK(esm_test_count_files(dir, "out.esmc") == 0);
}

TEST(bad_truncated_zip)
{
    const char *dir = mini(t_, "trunc", MINI_ZIP);
    REQUIRE(dir);
    char zip[4300], tmp[4300];
    snprintf(zip, sizeof zip, "%s/images_background.zip", dir);
    snprintf(tmp, sizeof tmp, "%s/whole.zip", dir);
    REQUIRE(rename(zip, tmp) == 0);
    struct stat st;
    REQUIRE(stat(tmp, &st) == 0);
    REQUIRE(esm_test_copy_file(tmp, zip, st.st_size / 2));
    expect_prepare_fails_cleanly(t_, dir, "images_background.zip", "fetch");
}

TEST(bad_not_a_zip)
{
    const char *dir = mini(t_, "notzip", MINI_ZIP);
    REQUIRE(dir);
    char zip[4300];
    snprintf(zip, sizeof zip, "%s/images_evaluation.zip", dir);
    FILE *f = fopen(zip, "w");
    REQUIRE(f);
    fputs("<html>this is not a zip</html>\n", f);
    fclose(f);
    expect_prepare_fails_cleanly(t_, dir, "images_evaluation.zip", "not a readable zip");
}

static const char *first_png(const char *dir)
{
    /* mini() copies Alphabet_of_the_Magi first; its first character's first drawing. */
    static char path[4400];
    snprintf(path, sizeof path, "%s/images_background/Alphabet_of_the_Magi/character01/0709_01.png", dir);
    return path;
}

TEST(bad_corrupt_png)
{
    const char *dir = mini(t_, "corrupt", MINI_DIRS);
    REQUIRE(dir);
    const char *png = first_png(dir);
    REQUIRE(access(png, F_OK) == 0);
    REQUIRE(esm_test_copy_file(png, "/dev/null", -1));
    /* Keep the signature and header, cut the image data. */
    char whole[4500];
    snprintf(whole, sizeof whole, "%s.orig", png);
    REQUIRE(rename(png, whole) == 0);
    REQUIRE(esm_test_copy_file(whole, png, 60));
    REQUIRE(unlink(whole) == 0);
    expect_prepare_fails_cleanly(t_, dir, "0709_01.png", "PNG");
}

TEST(bad_png_of_wrong_size)
{
    const char *dir = mini(t_, "wrongsize", MINI_DIRS);
    REQUIRE(dir);
    REQUIRE(esm_test_write_png(first_png(dir), 50, 60));
    expect_prepare_fails_cleanly(t_, dir, "0709_01.png", "50x60, expected 105x105");
}

static void write_text(esm_tctx *t_, const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

TEST(bad_split_lines)
{
    const char *cache = esm_test_cache();
    REQUIRE(cache);
    char path[4300], cmd[9000];
    snprintf(path, sizeof path, "%s/split.txt", esm_test_tmpdir());
    write_text(t_, path, "Latin/character01/rot000\nLatin/character99/rot000\n");
    snprintf(cmd, sizeof cmd, "info --data %s --split %s", cache, path);
    esm_test_expect_cli_error(t_, cmd, "line 2", "Latin/character99");
    write_text(t_, path, "Latin/character01/rot045\n");
    esm_test_expect_cli_error(t_, cmd, "line 1", "rotDDD");
    write_text(t_, path, "just-garbage\n");
    esm_test_expect_cli_error(t_, cmd, "line 1", "malformed");
    write_text(t_, path, "Latin/character01/rot000\nLatin/character01/rot000\n");
    esm_test_expect_cli_error(t_, cmd, "line 2", "twice");
    snprintf(cmd, sizeof cmd, "info --data %s --split no-such-split", cache);
    esm_test_expect_cli_error(t_, cmd, "no-such-split", "trainval");
}

/* Copies the shared cache and damages the copy with f(). */
static void expect_bad_cache(esm_tctx *t_, const char *name, long keep, long poke_at, unsigned char poke,
                             const char *n1, const char *n2)
{
    const char *cache = esm_test_cache();
    REQUIRE(cache);
    char path[4300], cmd[9000];
    snprintf(path, sizeof path, "%s/%s.esmc", esm_test_tmpdir(), name);
    REQUIRE(esm_test_copy_file(cache, path, keep));
    if (poke_at >= 0) {
        FILE *f = fopen(path, "r+b");
        REQUIRE(f);
        fseek(f, poke_at, SEEK_SET);
        fputc(poke, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "info --data %s --split test", path);
    esm_test_expect_cli_error(t_, cmd, n1, n2);
}

TEST(bad_cache_files)
{
    expect_bad_cache(t_, "truncated", 5000000, -1, 0, "truncated.esmc", "truncated");
    expect_bad_cache(t_, "header-only", 20, -1, 0, "header-only.esmc", "truncated");
    expect_bad_cache(t_, "version", -1, 8, 99, "version.esmc", "version 99");
    expect_bad_cache(t_, "checksum", -1, 20000000, 0x5a, "checksum.esmc", "checksum");
    char path[4300], cmd[9000];
    snprintf(path, sizeof path, "%s/plain.txt", esm_test_tmpdir());
    write_text(t_, path, "hello\n");
    snprintf(cmd, sizeof cmd, "info --data %s", path);
    esm_test_expect_cli_error(t_, cmd, "plain.txt", "not an esmeta cache");
}

TEST(bad_episode_shapes_cli)
{
    const char *cache = esm_test_cache();
    REQUIRE(cache);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "sample --data %s --split test --way 1693", cache);
    esm_test_expect_cli_error(t_, cmd, "--way 1693", "1692 classes");
    snprintf(cmd, sizeof cmd, "sample --data %s --split test --shot 15 --query 6", cache);
    esm_test_expect_cli_error(t_, cmd, "--shot 15", "only 20");
    snprintf(cmd, sizeof cmd, "sample --data %s --split test --query 0", cache);
    esm_test_expect_cli_error(t_, cmd, "--query 0", "at least 1");
    snprintf(cmd, sizeof cmd, "sample --data %s --split test --way -3", cache);
    esm_test_expect_cli_error(t_, cmd, "--way -3", "at least 1");
    snprintf(cmd, sizeof cmd, "sample --data %s --way five", cache);
    esm_test_expect_cli_error(t_, cmd, "--way", "not an integer");
}

TEST(bad_prepare_keeps_existing_cache)
{
    const char *dir = mini(t_, "keep", MINI_ZIP);
    REQUIRE(dir);
    char out[4300], cmd[9000], copy[4400];
    snprintf(out, sizeof out, "%s/cache.esmc", dir);
    snprintf(cmd, sizeof cmd, "prepare --data %s --out %s", dir, out);
    REQUIRE(esm_test_run_cli(cmd, NULL, 0, NULL, 0) == 0);
    char bad_out[9000];
    snprintf(bad_out, sizeof bad_out, "prepare --data %s --out /nonexistent-folder/x.esmc", dir);
    esm_test_expect_cli_error(t_, bad_out, "/nonexistent-folder/x.esmc", "does not exist");
    snprintf(copy, sizeof copy, "%s.before", out);
    REQUIRE(esm_test_copy_file(out, copy, -1));
    char zip[4300];
    snprintf(zip, sizeof zip, "%s/images_evaluation.zip", dir);
    write_text(t_, zip, "not a zip\n");
    esm_test_expect_cli_error(t_, cmd, "images_evaluation.zip", NULL);
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", out, copy);
    CHECK(system(cmd) == 0);
    CHECK(esm_test_count_files(dir, "cache.esmc.tmp") == 0);
}

TEST(cli_version_and_info_json)
{
    char out[4096], err[4096];
    CHECK(esm_test_run_cli("--version", out, sizeof out, err, sizeof err) == 0);
    CHECK(strstr(out, "\"version\":\"") && strstr(out, "\"openmp\":true") && strstr(out, "\"blas\":\"openblas"));
    const char *cache = esm_test_cache();
    REQUIRE(cache);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "info --data %s --split evaluation", cache);
    CHECK(esm_test_run_cli(cmd, out, sizeof out, err, sizeof err) == 0);
    CHECKF(strstr(out, "\"classes\":2636") && strstr(out, "\"images\":52720") && strstr(out, "\"height\":28"), "%s", out);
    snprintf(cmd, sizeof cmd, "sample --data %s --seed 3 --episode 10 --count 2", cache);
    char again[4096];
    CHECK(esm_test_run_cli(cmd, out, sizeof out, err, sizeof err) == 0);
    CHECK(esm_test_run_cli(cmd, again, sizeof again, err, sizeof err) == 0);
    CHECK(!strcmp(out, again) && strstr(out, "\"episode\":11"));
}
