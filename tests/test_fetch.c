/* scripts/fetch-omniglot against a local mirror (file:// URLs): split files pass their
 * SHA-256 checks; the repacked zips in the shared data differ from the official bytes, so the
 * script must refuse them, exit non-zero, and leave no partial file behind. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TEST(fetch_verifies_checksums)
{
    const char *data = esm_test_data_dir();
    REQUIRE(data);
    char abs[4096];
    REQUIRE(realpath(data, abs));
    const char *dest = esm_test_tmpdir();
    char cmd[65536];
    snprintf(cmd, sizeof cmd,
             "ESMETA_SPLITS_URL=file://%s/splits/vinyals ESMETA_OMNIGLOT_URL=file://%s scripts/fetch-omniglot %s/og "
             "2>%s/fetch.err",
             abs, abs, dest, dest);
    int rc = system(cmd);
    CHECK(rc != 0);
    char path[8192];
    static const char *const splits[] = {"train", "val", "trainval", "test"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/og/splits/vinyals/%s.txt", dest, splits[i]);
        CHECKF(access(path, R_OK) == 0, "%s was not fetched", path);
    }
    snprintf(path, sizeof path, "%s/og/images_background.zip", dest);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/og", dest);
    CHECK(esm_test_count_files(path, ".fetch") == 0);
    snprintf(path, sizeof path, "%s/fetch.err", dest);
    FILE *f = fopen(path, "r");
    REQUIRE(f);
    char msg[4096] = "";
    size_t n = fread(msg, 1, sizeof msg - 1, f);
    msg[n] = 0;
    fclose(f);
    CHECKF(strstr(msg, "images_background.zip is") && strstr(msg, "expected 9464212"), "message: %s", msg);

    /* A damaged split file in the mirror is refused too. */
    char mirror[8192];
    snprintf(mirror, sizeof mirror, "%s/mirror", dest);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s/splits/vinyals/*.txt %s/ && echo extra >> %s/val.txt && "
             "rm -f %s/og/splits/vinyals/val.txt && ESMETA_SPLITS_URL=file://%s scripts/fetch-omniglot %s/og 2>%s/f2.err",
             mirror, abs, mirror, mirror, dest, mirror, dest, dest);
    CHECK(system(cmd) != 0);
    snprintf(path, sizeof path, "%s/og/splits/vinyals/val.txt", dest);
    CHECK(access(path, F_OK) != 0);
}
