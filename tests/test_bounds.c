/* Sizes users can type or files can claim: refused with a clear error before any allocation. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

TEST(bounds_width_whose_parameters_overflow_size_t)
{
    esm_net_config c = esm_net_config_default();
    esm_net net;
    esm_err err = {0};
    c.width = 1000000000; /* 4 blocks: 9 * width^2 per block wraps a 64-bit size_t */
    CHECK(esm_net_init(&net, &c, &err) == ESM_EINVAL);
    CHECKF(strstr(err.msg, "width 1000000000") != NULL, "%s", err.msg);
    c.width = 64;
    REQUIRE_OK(esm_net_init(&net, &c, &err), &err);
}

TEST(bounds_cli_refuses_absurd_pop_way_and_width)
{
    const char *cache = esm_test_cache();
    REQUIRE(cache);
    char args[4600];
    snprintf(args, sizeof args, "train --data %s --trainer es --pop 1000000000 --width 8 --depth 2 --generations 1 --quiet "
             "--out %s/pop", cache, esm_test_tmpdir());
    esm_test_expect_cli_error(t_, args, "--pop 1000000000", NULL);
    snprintf(args, sizeof args, "train --data %s --way 100000 --width 8 --depth 2 --episodes 1 --quiet --out %s/way",
             cache, esm_test_tmpdir());
    esm_test_expect_cli_error(t_, args, "--way 100000", "classes");
    snprintf(args, sizeof args, "train --data %s --width 1000000000 --episodes 1 --quiet --out %s/width", cache,
             esm_test_tmpdir());
    esm_test_expect_cli_error(t_, args, "width 1000000000", NULL);
}

TEST(bounds_cache_claiming_2_40_images)
{
    static char *names[] = {"Latin/character01"};
    static uint8_t bg[] = {1}, pixels[2 * 28 * 28];
    static int n_images[] = {2};
    static size_t first[] = {0};
    esm_dataset ds = {.height = 28, .width = 28, .channels = 1, .n_chars = 1, .names = names,
                      .background = bg, .n_images = n_images, .first = first, .n_total = 2,
                      .pixels = pixels};
    char path[4200];
    snprintf(path, sizeof path, "%s/huge.esmc", esm_test_tmpdir());
    esm_err err = {0};
    REQUIRE_OK(esm_cache_write(&ds, path, &err), &err);
    /* n_total sits after the magic, the version and four u32 dimensions (src/data/cache.c). */
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    uint64_t huge = (uint64_t)1 << 40;
    fseek(f, 8 + 4 + 4 * 4, SEEK_SET);
    fwrite(&huge, sizeof huge, 1, f);
    fclose(f);
    esm_dataset *out = NULL;
    CHECK(esm_cache_read(path, &out, &err) == ESM_EFORMAT);
    CHECKF(strstr(err.msg, "1099511627776 images") && strstr(err.msg, "huge.esmc"), "%s", err.msg);
    CHECK(out == NULL);
}
