/* The checkpoint container: round trip and every way a file can be damaged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"
#include "train/ckpt_file.h"

static void save_sample(esm_tctx *t_, const char *path)
{
    float params[1000];
    for (int i = 0; i < 1000; i++)
        params[i] = (float)i * 0.5f;
    const char cfg[] = "way=5 shot=5";
    esm_ckpt_section s[2] = {{"config", cfg, sizeof cfg}, {"params", params, sizeof params}};
    esm_err err = {0};
    REQUIRE_OK(esm_ckpt_write(path, s, 2, &err), &err);
}

TEST(ckpt_round_trip)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/a.ckpt", esm_test_tmpdir());
    save_sample(t_, path);
    esm_ckpt c;
    esm_err err = {0};
    REQUIRE_OK(esm_ckpt_read(path, &c, &err), &err);
    const void *data;
    size_t len;
    REQUIRE_OK(esm_ckpt_get(&c, "params", 4000, &data, &len, &err), &err);
    /* Sections are not aligned in the file: copy rather than load through a float pointer. */
    float last;
    memcpy(&last, (const char *)data + 999 * sizeof last, sizeof last);
    CHECK(last == 499.5f);
    REQUIRE_OK(esm_ckpt_get(&c, "config", 0, &data, &len, &err), &err);
    CHECK(!strcmp(data, "way=5 shot=5"));
    CHECK(esm_ckpt_get(&c, "params", 3996, &data, &len, &err) == ESM_EMISMATCH);
    CHECK(strstr(err.msg, "a.ckpt") != NULL);
    CHECK(esm_ckpt_get(&c, "adam", 0, &data, &len, &err) == ESM_ENOTFOUND);
    esm_ckpt_free(&c);
    CHECK(esm_test_count_files(esm_test_tmpdir(), "a.ckpt.tmp") == 0);
}

static esm_status read_damaged(esm_tctx *t_, const char *name, long keep, long poke_at, esm_err *err)
{
    char good[4200], bad[4200];
    snprintf(good, sizeof good, "%s/good.ckpt", esm_test_tmpdir());
    snprintf(bad, sizeof bad, "%s/%s", esm_test_tmpdir(), name);
    save_sample(t_, good);
    if (!esm_test_copy_file(good, bad, keep))
        return ESM_EIO;
    if (poke_at >= 0) {
        FILE *f = fopen(bad, "r+b");
        fseek(f, poke_at, SEEK_SET);
        int c = fgetc(f);
        fseek(f, poke_at, SEEK_SET);
        fputc(c ^ 0x40, f);
        fclose(f);
    }
    esm_ckpt c;
    esm_status st = esm_ckpt_read(bad, &c, err);
    if (st == ESM_OK)
        esm_ckpt_free(&c);
    return st;
}

TEST(ckpt_damage_is_detected)
{
    esm_err err = {0};
    CHECK(read_damaged(t_, "trunc.ckpt", 2000, -1, &err) == ESM_EFORMAT);
    CHECK(strstr(err.msg, "trunc.ckpt") && strstr(err.msg, "truncated"));
    CHECK(read_damaged(t_, "tiny.ckpt", 10, -1, &err) == ESM_EFORMAT);
    CHECK(read_damaged(t_, "flip.ckpt", -1, 3000, &err) == ESM_ECHECKSUM);
    CHECK(strstr(err.msg, "flip.ckpt") && strstr(err.msg, "checksum"));
    CHECK(read_damaged(t_, "version.ckpt", -1, 8, &err) == ESM_EVERSION);
    CHECK(read_damaged(t_, "magic.ckpt", -1, 0, &err) == ESM_EFORMAT);
    CHECK(strstr(err.msg, "not an esmeta checkpoint") != NULL);
}
