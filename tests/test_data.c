/* Data loading on the real Omniglot files: counts, pixels, rotations, cache, layouts. */
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

static int find_char(const esm_dataset *ds, const char *name)
{
    for (int i = 0; i < ds->n_chars; i++)
        if (!strcmp(ds->names[i], name))
            return i;
    return -1;
}

static int split_classes(esm_tctx *t_, const esm_dataset *ds, const char *name)
{
    esm_split sp;
    esm_err err = {0};
    if (esm_split_get(ds, name, &sp, &err) != ESM_OK) {
        esm_tfail(t_, __FILE__, __LINE__, "split %s: %s", name, err.msg);
        return -1;
    }
    int n = sp.n_classes;
    CHECKF(sp.min_images == 20, "split %s: min images %d", name, sp.min_images);
    esm_split_free(&sp);
    return n;
}

TEST(data_counts_from_official_zips)
{
    const char *dir = esm_test_data_dir();
    REQUIRE(dir);
    esm_err err = {0};
    esm_dataset *ds = NULL;
    REQUIRE_OK(esm_dataset_load(dir, NULL, &ds, &err), &err);
    CHECK(ds->n_chars == 1623);
    CHECK(ds->n_total == 32460);
    CHECK(ds->height == 28 && ds->width == 28 && ds->channels == 1);
    int bg = 0;
    for (int i = 0; i < ds->n_chars; i++) {
        bg += ds->background[i];
        CHECKF(ds->n_images[i] == 20, "%s has %d drawings", ds->names[i], ds->n_images[i]);
    }
    CHECK(bg == 964);
    CHECK(split_classes(t_, ds, "trainval") == 4800);
    CHECK(split_classes(t_, ds, "test") == 1692);
    CHECK(split_classes(t_, ds, "train") == 4112);
    CHECK(split_classes(t_, ds, "val") == 688);
    CHECK(split_classes(t_, ds, "background") == 3856);
    CHECK(split_classes(t_, ds, "evaluation") == 2636);
    esm_dataset_free(ds);
}

/* Compares with tests/golden/pixel_reference.txt, made by an independent Python decoder
 * and exact rational area averaging (tests/golden/gen_pixel_reference.py). */
TEST(data_pixels_match_independent_reference)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    FILE *f = fopen("tests/golden/pixel_reference.txt", "r");
    REQUIRE(f);
    char line[8192];
    int images = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = 0;
        /* "Alphabet/characterNN/IIII_DD.png": drawing DD-1 of that character. */
        char *slash = strrchr(line, '/');
        REQUIRE(slash);
        int drawing = atoi(slash + 6) - 1;
        *slash = 0;
        int chr = find_char(ds, line);
        REQUIREF(chr >= 0 && drawing >= 0 && drawing < 20, "unknown reference image %s", line);
        const uint8_t *px = ds->pixels + (ds->first[chr] + (size_t)drawing) * 784;
        int worst = 0, ink = 0;
        for (int i = 0; i < 784; i++) {
            int v;
            REQUIRE(fscanf(f, "%d", &v) == 1);
            int d = abs(v - px[i]);
            worst = d > worst ? d : worst;
            ink += px[i] > 127;
        }
        /* Rounding of values that sit exactly on .5 may differ by one level (float vs exact). */
        CHECKF(worst <= 1, "%s drawing %d differs from the reference by %d levels", line, drawing, worst);
        CHECKF(ink > 10 && ink < 400, "%s: implausible ink pixel count %d", line, ink);
        images++;
        if (!fgets(line, sizeof line, f))
            break;
    }
    fclose(f);
    CHECK(images == 3);
    esm_dataset_free(ds);
}

TEST(data_pixel_statistics_are_plausible)
{
    /* Ink covers a small part of each drawing; background is 0 and strokes reach 255. */
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    double sum = 0;
    int full_ink = 0, blank = 0;
    for (size_t i = 0; i < ds->n_total; i++) {
        const uint8_t *px = ds->pixels + i * 784;
        int mx = 0, s = 0;
        for (int k = 0; k < 784; k++) {
            s += px[k];
            mx = px[k] > mx ? px[k] : mx;
        }
        sum += s / (784.0 * 255.0);
        full_ink += mx == 255;
        blank += s == 0;
    }
    double mean = sum / (double)ds->n_total;
    CHECKF(mean > 0.05 && mean < 0.25, "mean ink %.4f", mean);
    CHECK(blank == 0);
    CHECKF(full_ink > (int)ds->n_total * 9 / 10, "only %d images reach full ink", full_ink);
    esm_dataset_free(ds);
}

TEST(data_rotation_is_counter_clockwise_quarter_turns)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    float r[4][784], again[784];
    int chr = 17, img = 3;
    for (int k = 0; k < 4; k++)
        esm_image_to_float(ds, chr, img, k, r[k]);
    int asym = 0;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            /* Counter-clockwise: the top-right corner moves to the top-left. */
            CHECK(r[1][y * 28 + x] == r[0][x * 28 + (27 - y)]);
            CHECK(r[2][y * 28 + x] == r[0][(27 - y) * 28 + (27 - x)]);
            CHECK(r[3][y * 28 + x] == r[0][(27 - x) * 28 + y]);
            asym += r[1][y * 28 + x] != r[0][y * 28 + x];
        }
    CHECK(asym > 0);
    /* The float image is the stored byte / 255, ink = 1. */
    const uint8_t *px = ds->pixels + (ds->first[chr] + (size_t)img) * 784;
    esm_image_to_float(ds, chr, img, 0, again);
    for (int i = 0; i < 784; i++)
        CHECK_NEAR(again[i], px[i] / 255.0, 1e-7);
    esm_dataset_free(ds);
}

TEST(data_cache_round_trip_is_bit_identical)
{
    const char *dir = esm_test_data_dir();
    REQUIRE(dir);
    esm_err err = {0};
    esm_dataset *fresh = NULL, *cached = NULL;
    REQUIRE_OK(esm_dataset_load(dir, NULL, &fresh, &err), &err);
    char path[4200];
    snprintf(path, sizeof path, "%s/rt.esmc", esm_test_tmpdir());
    REQUIRE_OK(esm_cache_write(fresh, path, &err), &err);
    CHECK(esm_cache_is_cache(path));
    REQUIRE_OK(esm_dataset_load(path, NULL, &cached, &err), &err);
    CHECK(cached->n_chars == fresh->n_chars && cached->n_total == fresh->n_total);
    CHECK(memcmp(cached->pixels, fresh->pixels, fresh->n_total * 784) == 0);
    int names_ok = 1;
    for (int i = 0; i < fresh->n_chars; i++)
        names_ok &= !strcmp(cached->names[i], fresh->names[i]) && cached->background[i] == fresh->background[i] &&
                    cached->n_images[i] == fresh->n_images[i] && cached->first[i] == fresh->first[i];
    CHECK(names_ok);
    REQUIRE(cached->n_splits == fresh->n_splits && fresh->n_splits == 4);
    for (int i = 0; i < fresh->n_splits; i++)
        CHECK(!strcmp(cached->split_names[i], fresh->split_names[i]) &&
              !strcmp(cached->split_texts[i], fresh->split_texts[i]));
    /* Writing the loaded cache again gives the same bytes. */
    char path2[4300];
    snprintf(path2, sizeof path2, "%s/rt2.esmc", esm_test_tmpdir());
    REQUIRE_OK(esm_cache_write(cached, path2, &err), &err);
    FILE *a = fopen(path, "rb"), *b = fopen(path2, "rb");
    REQUIRE(a && b);
    int same = 1, ca, cb;
    do {
        ca = fgetc(a), cb = fgetc(b);
        same &= ca == cb;
    } while (ca != EOF && cb != EOF && same);
    fclose(a), fclose(b);
    CHECK(same);
    CHECK(esm_test_count_files(esm_test_tmpdir(), "rt.esmc.tmp") == 0);
    esm_dataset_free(fresh);
    esm_dataset_free(cached);
}

static void check_layout_matches_full(esm_tctx *t_, esm_mini_layout layout)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/mini%d", esm_test_tmpdir(), (int)layout);
    REQUIRE(esm_test_make_mini(dir, 3, layout, 0));
    esm_err err = {0};
    esm_dataset *mini = NULL, *full = esm_test_dataset();
    REQUIRE(full);
    REQUIRE_OK(esm_dataset_load(dir, NULL, &mini, &err), &err);
    CHECK(mini->n_chars == 6 && mini->n_total == 120);
    for (int i = 0; i < mini->n_chars; i++) {
        int j = find_char(full, mini->names[i]);
        REQUIREF(j >= 0, "%s not in the full set", mini->names[i]);
        CHECK(mini->background[i] == full->background[j]);
        CHECK(memcmp(mini->pixels + mini->first[i] * 784, full->pixels + full->first[j] * 784, 20 * 784) == 0);
    }
    /* Without split files, a Vinyals split is a clear error and Lake's still works. */
    esm_split sp;
    CHECK(esm_split_get(mini, "trainval", &sp, &err) == ESM_ENOTFOUND);
    CHECK(strstr(err.msg, "splits/vinyals/trainval.txt") != NULL);
    REQUIRE_OK(esm_split_get(mini, "evaluation", &sp, &err), &err);
    CHECK(sp.n_classes == 12);
    esm_split_free(&sp);
    esm_dataset_free(mini);
    esm_dataset_free(full);
}

TEST(data_extracted_folders_match_zips)
{
    check_layout_matches_full(t_, MINI_DIRS);
}

TEST(data_zip_with_directory_entries)
{
    check_layout_matches_full(t_, MINI_ZIP_WITH_DIR_ENTRIES);
}

TEST(data_split_file_by_path)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    char path[4200];
    snprintf(path, sizeof path, "%s/my_split.txt", esm_test_tmpdir());
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "Latin/character01/rot000\r\nLatin/character01/rot270\n\nGreek/character02/rot090\n");
    fclose(f);
    esm_split sp;
    esm_err err = {0};
    REQUIRE_OK(esm_split_get(ds, path, &sp, &err), &err);
    REQUIRE(sp.n_classes == 3);
    CHECK(!strcmp(ds->names[sp.classes[0].chr], "Latin/character01") && sp.classes[0].rot == 0);
    CHECK(sp.classes[1].rot == 3);
    CHECK(!strcmp(ds->names[sp.classes[2].chr], "Greek/character02") && sp.classes[2].rot == 1);
    esm_split_free(&sp);
    esm_dataset_free(ds);
}
