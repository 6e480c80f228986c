/* A user's own class-folder tree (esmeta prepare --images): PNG and JPEG, grey and RGB,
 * resizing, bad inputs. The images are made here, so no network or real data set is needed. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "esmeta.h"
#include "harness.h"

enum { W = 8, H = 6 };

/* Pixel (y, x, channel c) of image k: smooth, so that JPEG at quality 100 stays close. */
static uint8_t pattern(int k, int y, int x, int c)
{
    return (uint8_t)(40 + 20 * k + 10 * y + 6 * x + 50 * c);
}

static void fill(int k, uint8_t *rgb)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                rgb[(y * W + x) * 3 + c] = pattern(k, y, x, c);
}

static int write_png_rgb(const char *path, int k)
{
    uint8_t rgb[W * H * 3];
    fill(k, rgb);
    png_image img = {.version = PNG_IMAGE_VERSION, .width = W, .height = H, .format = PNG_FORMAT_RGB};
    return png_image_write_to_file(&img, path, 0, rgb, 0, NULL);
}

/* components 3: RGB from pattern k; 4: CMYK (the unsupported kind). */
static int write_jpeg(const char *path, int k, int components)
{
    uint8_t px[W * H * 4];
    if (components == 3)
        fill(k, px);
    else
        memset(px, 100, sizeof px);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = W, ci.image_height = H;
    ci.input_components = components;
    ci.in_color_space = components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 100, TRUE);
    if (components == 3) { /* no chroma subsampling: colour stays per pixel */
        ci.comp_info[0].h_samp_factor = ci.comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = px + ci.next_scanline * W * components;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return fclose(f) == 0;
}

/* root/animals/cat: 2 PNG; root/animals/dog: 3 JPEG; root/plants: 1 PNG + 1 JPEG. */
static int make_tree(const char *root)
{
    char p[4400];
    const char *dirs[] = {"", "/animals", "/animals/cat", "/animals/dog", "/plants"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s%s", root, dirs[i]);
        if (mkdir(p, 0755) != 0)
            return 0;
    }
    int ok = 1;
    for (int k = 0; k < 2; k++)
        snprintf(p, sizeof p, "%s/animals/cat/%d.png", root, k), ok &= write_png_rgb(p, k);
    for (int k = 0; k < 3; k++)
        snprintf(p, sizeof p, "%s/animals/dog/%d.JPG", root, k), ok &= write_jpeg(p, k, 3);
    snprintf(p, sizeof p, "%s/plants/a.png", root), ok &= write_png_rgb(p, 5);
    snprintf(p, sizeof p, "%s/plants/b.jpeg", root), ok &= write_jpeg(p, 6, 3);
    return ok;
}

static esm_dataset *load(esm_tctx *t_, const char *root, int channels, int h, int w, esm_err *err)
{
    esm_images_opts o = {.shape = {.channels = channels, .height = h, .width = w}, .threads = 2};
    esm_dataset *ds = NULL;
    esm_status st = esm_dataset_from_images(root, &o, &ds, err);
    (void)t_;
    return st == ESM_OK ? ds : NULL;
}

TEST(images_rgb_tree_counts_and_pixels)
{
    char root[4200];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    REQUIRE(make_tree(root));
    esm_err err = {0};
    esm_dataset *ds = load(t_, root, 3, H, W, &err);
    REQUIRE_OK(ds ? ESM_OK : err.code, &err);
    REQUIRE(ds->n_chars == 3 && ds->n_total == 7 && ds->channels == 3 && ds->height == H && ds->width == W);
    CHECK(!strcmp(ds->names[0], "animals/cat") && !strcmp(ds->names[1], "animals/dog") &&
          !strcmp(ds->names[2], "plants"));
    CHECK(ds->n_images[0] == 2 && ds->n_images[1] == 3 && ds->n_images[2] == 2);
    /* image order: cat 0,1 (PNG, exact), dog 0..2 (JPEG q100, near), plants a.png, b.jpeg */
    const int pat[7] = {0, 1, 0, 1, 2, 5, 6}, exact[7] = {1, 1, 0, 0, 0, 1, 0};
    int worst = 0;
    for (int i = 0; i < 7; i++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int got = ds->pixels[(((size_t)i * 3 + c) * H + y) * W + x], want = pattern(pat[i], y, x, c);
                    int d = abs(got - want);
                    if (exact[i])
                        CHECKF(d == 0, "image %d c%d (%d,%d): %d, want %d", i, c, y, x, got, want);
                    else if (d > worst)
                        worst = d;
                }
    CHECKF(worst <= 3, "JPEG pixels differ from the encoded ones by up to %d", worst);
    esm_dataset_free(ds);
}

TEST(images_grey_and_resize_against_reference)
{
    char root[4200], p[4400];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    snprintf(p, sizeof p, "%s/c", root);
    REQUIRE(mkdir(root, 0755) == 0 && mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/c/x.png", root);
    /* a 4x2 grey image: rows 0,1 are 0 200 40 80 and 100 100 100 100 */
    uint8_t g[8] = {0, 200, 40, 80, 100, 100, 100, 100};
    png_image img = {.version = PNG_IMAGE_VERSION, .width = 4, .height = 2, .format = PNG_FORMAT_GRAY};
    REQUIRE(png_image_write_to_file(&img, p, 0, g, 0, NULL));
    esm_err err = {0};
    /* Shrink both axes to 1x2: each output the mean of its 2x2 block. */
    esm_dataset *ds = load(t_, root, 1, 1, 2, &err);
    REQUIRE_OK(ds ? ESM_OK : err.code, &err);
    CHECK(ds->pixels[0] == 100 && ds->pixels[1] == 80); /* (0+200+100+100)/4, (40+80+100+100)/4 */
    esm_dataset_free(ds);
    /* Enlarge rows 2 -> 4 (bilinear, centres aligned), keep 4 columns: column 0 goes
     * 0, 0.75*0 + 0.25*100, 0.25*0 + 0.75*100, 100. */
    ds = load(t_, root, 1, 4, 4, &err);
    REQUIRE_OK(ds ? ESM_OK : err.code, &err);
    const uint8_t col0[4] = {0, 25, 75, 100}, col1[4] = {200, 175, 125, 100};
    for (int y = 0; y < 4; y++)
        CHECKF(ds->pixels[y * 4] == col0[y] && ds->pixels[y * 4 + 1] == col1[y], "row %d: %d %d", y,
               ds->pixels[y * 4], ds->pixels[y * 4 + 1]);
    esm_dataset_free(ds);
    /* RGB of a grey PNG repeats the grey value in every channel. */
    ds = load(t_, root, 3, 2, 4, &err);
    REQUIRE_OK(ds ? ESM_OK : err.code, &err);
    CHECK(ds->pixels[1] == 200 && ds->pixels[8 + 1] == 200 && ds->pixels[16 + 1] == 200);
    esm_dataset_free(ds);
}

/* A tree with the good classes plus one bad file or folder must fail naming it. */
static void expect_bad(esm_tctx *t_, const char *what, void (*spoil)(const char *root), const char *n1,
                       const char *n2)
{
    char root[4200];
    snprintf(root, sizeof root, "%s/%s", esm_test_tmpdir(), what);
    REQUIRE(make_tree(root));
    spoil(root);
    esm_err err = {0};
    esm_dataset *ds = load(t_, root, 3, H, W, &err);
    CHECKF(!ds, "%s: loaded", what);
    esm_dataset_free(ds);
    CHECKF(strstr(err.msg, n1) && (!n2 || strstr(err.msg, n2)), "%s: message '%s' lacks '%s'/'%s'", what, err.msg,
           n1, n2 ? n2 : "");
}

static void truncated_jpeg(const char *root)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/animals/dog/1.JPG", root);
    struct stat sb;
    if (stat(p, &sb) == 0 && truncate(p, sb.st_size / 2) != 0)
        perror(p);
}

static void cmyk_jpeg(const char *root)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/plants/c.jpg", root);
    write_jpeg(p, 0, 4);
}

static void png16(const char *root)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/plants/d.png", root);
    uint16_t px[W * H] = {0};
    png_image img = {.version = PNG_IMAGE_VERSION, .width = W, .height = H, .format = PNG_FORMAT_LINEAR_Y};
    png_image_write_to_file(&img, p, 0, px, 0, NULL);
}

static void empty_class(const char *root)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/animals/fish", root);
    mkdir(p, 0755);
}

static void not_an_image(const char *root)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/plants/e.png", root);
    FILE *f = fopen(p, "w");
    if (f)
        fputs("hello", f), fclose(f);
}

TEST(images_bad_inputs_name_the_file)
{
    expect_bad(t_, "trunc", truncated_jpeg, "animals/dog/1.JPG", "truncated");
    expect_bad(t_, "cmyk", cmyk_jpeg, "plants/c.jpg", "CMYK");
    expect_bad(t_, "png16", png16, "plants/d.png", "16-bit");
    expect_bad(t_, "empty", empty_class, "animals/fish", "empty class");
    expect_bad(t_, "garbage", not_an_image, "plants/e.png", "neither a PNG nor a JPEG");
}

TEST(images_rotations_need_square_images)
{
    char root[4200];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    REQUIRE(make_tree(root));
    esm_err err = {0};
    esm_dataset *ds = load(t_, root, 3, H, W, &err);
    REQUIRE_OK(ds ? ESM_OK : err.code, &err);
    esm_split sp;
    CHECK(esm_split_parse(ds, "plants\nanimals/cat/rot000\n", "list", &sp, &err) == ESM_OK && sp.n_classes == 2);
    esm_split_free(&sp);
    CHECK(esm_split_parse(ds, "plants/rot090\n", "list", &sp, &err) != ESM_OK);
    CHECKF(strstr(err.msg, "square") && strstr(err.msg, "plants"), "%s", err.msg);
    CHECK(esm_split_get(ds, "background", &sp, &err) != ESM_OK && strstr(err.msg, "square"));
    esm_dataset_free(ds);
}

/* Omniglot's extracted folders prepared as a user's own tree (grey, 28x28, inverted) give the
 * pixels and names the Omniglot loader gives. */
TEST(images_omniglot_folder_matches_zip_path)
{
    char dir[4200], half[4600];
    snprintf(dir, sizeof dir, "%s/mini", esm_test_tmpdir());
    REQUIRE(esm_test_make_mini(dir, 3, MINI_ZIP, 0));
    esm_err err = {0};
    esm_dataset *ref = NULL, *ds = NULL;
    REQUIRE_OK(esm_dataset_load(dir, NULL, &ref, &err), &err);
    char extracted[4400];
    snprintf(extracted, sizeof extracted, "%s/dirs", esm_test_tmpdir());
    REQUIRE(esm_test_make_mini(extracted, 3, MINI_DIRS, 0));
    snprintf(half, sizeof half, "%s/images_background", extracted);
    esm_images_opts o = {.shape = {.channels = 1, .height = 28, .width = 28, .invert = 1}};
    REQUIRE_OK(esm_dataset_from_images(half, &o, &ds, &err), &err);
    REQUIRE(ds->n_chars == 3);
    for (int c = 0; c < 3; c++)
        CHECKF(!strcmp(ds->names[c], ref->names[c]) && ds->n_images[c] == ref->n_images[c], "class %d: %s vs %s", c,
               ds->names[c], ref->names[c]);
    CHECK(memcmp(ds->pixels, ref->pixels, ds->n_total * 28 * 28) == 0);
    esm_dataset_free(ds);
    esm_dataset_free(ref);
}

TEST(images_cli_prepare_and_info)
{
    char root[4200], cache[4300], cmd[9000], out[2048], errb[2048];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    snprintf(cache, sizeof cache, "%s/own.esmc", esm_test_tmpdir());
    REQUIRE(make_tree(root));
    snprintf(cmd, sizeof cmd, "prepare --images %s --channels 3 --size 4x4 --out %s", root, cache);
    REQUIRE(esm_test_run_cli(cmd, out, sizeof out, errb, sizeof errb) == 0);
    CHECKF(strstr(out, "\"images\":7") && strstr(out, "\"channels\":3"), "%s", out);
    snprintf(cmd, sizeof cmd, "info --data %s --split background", cache);
    REQUIRE(esm_test_run_cli(cmd, out, sizeof out, errb, sizeof errb) == 0);
    CHECKF(strstr(out, "\"classes\":12") && strstr(out, "\"height\":4") && strstr(out, "\"width\":4") &&
           strstr(out, "\"channels\":3"), "%s", out);
    snprintf(cmd, sizeof cmd, "prepare --images %s --size 4y4 --out %s", root, cache);
    esm_test_expect_cli_error(t_, cmd, "--size", "HxW");
}

/* root/classNN/0.png for n classes, each image a different colour. */
static int make_flat_tree(const char *root, int n)
{
    char p[4400];
    if (mkdir(root, 0755) != 0)
        return 0;
    for (int c = 0; c < n; c++) {
        snprintf(p, sizeof p, "%s/class%02d", root, c);
        if (mkdir(p, 0755) != 0)
            return 0;
        snprintf(p, sizeof p, "%s/class%02d/0.png", root, c);
        if (!write_png_rgb(p, c))
            return 0;
    }
    return 1;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static const char *split_text(const esm_dataset *ds, const char *name)
{
    for (int i = 0; i < ds->n_splits; i++)
        if (!strcmp(ds->split_names[i], name))
            return ds->split_texts[i];
    return NULL;
}

TEST(images_seeded_ratio_split)
{
    char root[4200];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    REQUIRE(make_flat_tree(root, 20));
    esm_err err = {0};
    esm_dataset *a = load(t_, root, 1, 2, 2, &err), *b = load(t_, root, 1, 2, 2, &err), *c = load(t_, root, 1, 2, 2, &err);
    REQUIRE(a && b && c);
    const double r[3] = {0.7, 0.1, 0.2};
    REQUIRE_OK(esm_dataset_split_by_ratio(a, r, 5, &err), &err);
    REQUIRE_OK(esm_dataset_split_by_ratio(b, r, 5, &err), &err);
    REQUIRE_OK(esm_dataset_split_by_ratio(c, r, 6, &err), &err);
    const char *names[3] = {"train", "val", "test"};
    const int want[3] = {14, 2, 4};
    int differs = 0;
    unsigned seen[20] = {0};
    for (int s = 0; s < 3; s++) {
        const char *ta = split_text(a, names[s]), *tb = split_text(b, names[s]), *tc = split_text(c, names[s]);
        REQUIRE(ta && tb && tc);
        CHECKF(count_lines(ta) == want[s], "%s: %d classes", names[s], count_lines(ta));
        CHECK(!strcmp(ta, tb));
        differs |= strcmp(ta, tc) != 0;
        esm_split sp;
        REQUIRE_OK(esm_split_get(a, names[s], &sp, &err), &err);
        for (int i = 0; i < sp.n_classes; i++)
            seen[sp.classes[i].chr]++;
        esm_split_free(&sp);
    }
    CHECK(differs);
    for (int i = 0; i < 20; i++)
        CHECKF(seen[i] == 1, "class %d is in %u splits", i, seen[i]);
    const double bad[3] = {0.7, 0.2, 0.2}, empty[3] = {0.99, 0.01, 0.0};
    CHECK(esm_dataset_split_by_ratio(c, r, 1, &err) != ESM_OK && strstr(err.msg, "already"));
    esm_dataset_free(c);
    c = load(t_, root, 1, 2, 2, &err);
    REQUIRE(c);
    CHECK(esm_dataset_split_by_ratio(c, bad, 1, &err) != ESM_OK && strstr(err.msg, "add up to 1"));
    CHECK(esm_dataset_split_by_ratio(c, empty, 1, &err) != ESM_OK && strstr(err.msg, "no class"));
    esm_dataset_free(a), esm_dataset_free(b), esm_dataset_free(c);
}

TEST(images_cli_ratio_split_written_out)
{
    char root[4200], cache[4300], list[4400], cmd[9000], out[2048], errb[2048];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    snprintf(cache, sizeof cache, "%s/own.esmc", esm_test_tmpdir());
    REQUIRE(make_flat_tree(root, 10));
    snprintf(cmd, sizeof cmd, "prepare --images %s --size 4x4 --split-ratio 0.6,0.2,0.2 --seed 3 --out %s", root,
             cache);
    REQUIRE(esm_test_run_cli(cmd, out, sizeof out, errb, sizeof errb) == 0);
    snprintf(list, sizeof list, "%s.train.txt", cache);
    CHECK(esm_test_count_lines(list, "class") == 6);
    snprintf(cmd, sizeof cmd, "info --data %s --split train", cache);
    REQUIRE(esm_test_run_cli(cmd, out, sizeof out, errb, sizeof errb) == 0);
    CHECKF(strstr(out, "\"classes\":6"), "%s", out);
    /* the written list is a split file the raw folder understands too */
    snprintf(cmd, sizeof cmd, "info --data %s --split %s", cache, list);
    REQUIRE(esm_test_run_cli(cmd, out, sizeof out, errb, sizeof errb) == 0);
    CHECKF(strstr(out, "\"classes\":6"), "%s", out);
}

/* A copy of the cache at from, rewritten as format version: bytes [cut, cut + n) of the header
 * left out (the fields that version lacks) and the CRC made again. */
static int write_older_cache(const char *from, const char *to, unsigned version, size_t cut, size_t n)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        return 0;
    static unsigned char buf[1 << 14];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (len < cut + n + 4 || len == sizeof buf)
        return 0;
    memmove(buf + cut, buf + cut + n, len - cut - n);
    len -= n;
    buf[8] = (unsigned char)version;
    uint32_t crc = esm_crc32(0, buf, len - 4);
    for (int i = 0; i < 4; i++)
        buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    f = fopen(to, "wb");
    return f && fwrite(buf, 1, len, f) == len && fclose(f) == 0;
}

/* The stored statistics against a direct computation over the pattern, what episodes see, the
 * cache round trip, and version-1 (no statistics) and version-2 caches (no inversion) that still load. */
TEST(images_channel_stats_and_cache_versions)
{
    char root[4200], cache[4300], old[4300];
    snprintf(root, sizeof root, "%s/set", esm_test_tmpdir());
    snprintf(cache, sizeof cache, "%s/v2.esmc", esm_test_tmpdir());
    snprintf(old, sizeof old, "%s/v1.esmc", esm_test_tmpdir());
    REQUIRE(make_flat_tree(root, 3)); /* class c holds pattern c, PNG: exact pixels */
    esm_images_opts o = {.shape = {.channels = 3, .height = H, .width = W}, .normalize = 1};
    esm_err err = {0};
    esm_dataset *ds = NULL, *back = NULL;
    REQUIRE_OK(esm_dataset_from_images(root, &o, &ds, &err), &err);
    for (int c = 0; c < 3; c++) {
        double s = 0, s2 = 0, n = 3.0 * H * W;
        for (int k = 0; k < 3; k++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    s += pattern(k, y, x, c) / 255.0, s2 += pow(pattern(k, y, x, c) / 255.0, 2);
        CHECK_NEAR(ds->mean[c], s / n, 1e-6);
        CHECK_NEAR(ds->std[c], sqrt(s2 / n - pow(s / n, 2)), 1e-5);
    }
    float img[3 * H * W];
    esm_image_to_float(ds, 1, 0, 0, img);
    CHECK_NEAR(img[2 * H * W + 5], (pattern(1, 0, 5, 2) / 255.0 - ds->mean[2]) / ds->std[2], 1e-5);
    REQUIRE_OK(esm_cache_write(ds, cache, &err), &err);
    REQUIRE_OK(esm_cache_read(cache, &back, &err), &err);
    CHECK(back->normalize == 1 && back->mean[2] == ds->mean[2] && back->std[1] == ds->std[1]);
    CHECK(ds->inverted == 0 && back->inverted == 0);
    /* mapped, not copied: the pixels lie inside the file's mapping, just before the CRC */
    CHECK(back->mapping && back->pixels + 3 * 3 * H * W + 4 == (uint8_t *)back->mapping + back->mapping_len);
    CHECK(!memcmp(back->pixels, ds->pixels, 3 * 3 * H * W));
    esm_dataset_free(back);
    /* version 2: without the 4 bytes of inversion after the statistics; it is not known */
    REQUIRE(write_older_cache(cache, old, 2, 68, 4));
    REQUIRE_OK(esm_cache_read(old, &back, &err), &err);
    CHECK(back->inverted == -1 && back->normalize == 1 && back->std[1] == ds->std[1]);
    CHECK(!memcmp(back->pixels, ds->pixels, 3 * 3 * H * W));
    esm_dataset_free(back);
    /* version 1: without the 4 + 3 x 8 bytes of statistics and the inversion after the header */
    REQUIRE(write_older_cache(cache, old, 1, 40, 32));
    REQUIRE_OK(esm_cache_read(old, &back, &err), &err);
    CHECK(back->normalize == 0 && back->inverted == -1 && back->n_total == 3);
    CHECK(!memcmp(back->pixels, ds->pixels, 3 * 3 * H * W));
    esm_image_to_float(back, 1, 0, 0, img);
    CHECK_NEAR(img[2 * H * W + 5], pattern(1, 0, 5, 2) / 255.0, 1e-6);
    esm_dataset_free(back);
    esm_dataset_free(ds);
}

static int write_text_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    return f && fputs(text, f) >= 0 && fclose(f) == 0;
}

/* dir/images: n01_0.jpg n01_1.jpg n02_0.png n02_1.png n03_0.png n03_1.jpg; dir/{train,val}.csv */
static int make_csv_set(const char *dir)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/images", dir);
    if (mkdir(dir, 0755) != 0 || mkdir(p, 0755) != 0)
        return 0;
    const char *files[6] = {"n01_0.jpg", "n01_1.jpg", "n02_0.png", "n02_1.png", "n03_0.png", "n03_1.jpg"};
    int ok = 1;
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/images/%s", dir, files[i]);
        ok &= strstr(files[i], ".png") ? write_png_rgb(p, i) : write_jpeg(p, i, 3);
    }
    snprintf(p, sizeof p, "%s/train.csv", dir);
    ok &= write_text_file(p, "filename,label\r\nn02_1.png,n02\r\nn01_0.jpg,n01\r\nn01_1.jpg,n01\r\nn02_0.png,n02\r\n");
    snprintf(p, sizeof p, "%s/val.csv", dir);
    ok &= write_text_file(p, "filename,label\nn03_0.png,n03\nn03_1.jpg,n03\n");
    return ok;
}

static esm_status load_csv(const char *dir, const char *extra_csv, esm_dataset **ds, esm_err *err)
{
    char img[4400], tr[4400], va[4400];
    snprintf(img, sizeof img, "%s/images", dir);
    snprintf(tr, sizeof tr, "%s/train.csv", dir);
    snprintf(va, sizeof va, "%s/val.csv", dir);
    const char *csvs[3] = {tr, va, extra_csv};
    esm_images_opts o = {.shape = {.channels = 3, .height = H, .width = W}};
    return esm_dataset_from_csv(img, csvs, extra_csv ? 3 : 2, &o, ds, err);
}

TEST(images_miniimagenet_csv_splits)
{
    char dir[4200], bad[4400];
    snprintf(dir, sizeof dir, "%s/mini", esm_test_tmpdir());
    REQUIRE(make_csv_set(dir));
    esm_err err = {0};
    esm_dataset *ds = NULL;
    REQUIRE_OK(load_csv(dir, NULL, &ds, &err), &err);
    REQUIRE(ds->n_chars == 3 && ds->n_total == 6);
    CHECK(!strcmp(ds->names[1], "n02") && ds->n_images[1] == 2);
    /* image 3 is n02_1.png, pattern 3: exact */
    CHECK(ds->pixels[(3 * 3 + 1) * H * W + 2 * W + 5] == pattern(3, 2, 5, 1));
    esm_split sp;
    REQUIRE_OK(esm_split_get(ds, "train", &sp, &err), &err);
    CHECK(sp.n_classes == 2 && sp.classes[0].chr == 0 && sp.classes[1].chr == 1);
    esm_split_free(&sp);
    REQUIRE_OK(esm_split_get(ds, "val", &sp, &err), &err);
    CHECK(sp.n_classes == 1 && sp.classes[0].chr == 2 && sp.min_images == 2);
    esm_split_free(&sp);
    esm_dataset_free(ds);

    snprintf(bad, sizeof bad, "%s/test.csv", dir);
    REQUIRE(write_text_file(bad, "filename,label\nn03_0.png,n03\n"));
    CHECK(load_csv(dir, bad, &ds, &err) != ESM_OK && strstr(err.msg, "duplicate class n03") &&
          strstr(err.msg, "val.csv") && strstr(err.msg, "test.csv"));
    REQUIRE(write_text_file(bad, "filename,label\nn04_9.jpg,n04\n"));
    CHECK(load_csv(dir, bad, &ds, &err) != ESM_OK && strstr(err.msg, "test.csv line 2") && strstr(err.msg, "n04_9.jpg"));
    REQUIRE(write_text_file(bad, "n04_9.jpg;n04\n"));
    CHECK(load_csv(dir, bad, &ds, &err) != ESM_OK && strstr(err.msg, "test.csv line 1") &&
          strstr(err.msg, "filename,label"));
}

TEST(images_cli_csv_prepare)
{
    char dir[4200], cache[4300], cmd[20000], out[2048], errb[2048];
    snprintf(dir, sizeof dir, "%s/mini", esm_test_tmpdir());
    snprintf(cache, sizeof cache, "%s/mini.esmc", esm_test_tmpdir());
    REQUIRE(make_csv_set(dir));
    snprintf(cmd, sizeof cmd, "prepare --images %s/images --csv %s/train.csv --csv %s/val.csv --size 8x8 --out %s", dir,
             dir, dir, cache);
    REQUIRE(esm_test_run_cli(cmd, out, sizeof out, errb, sizeof errb) == 0);
    CHECKF(strstr(out, "\"splits\":2") && strstr(out, "\"images\":6"), "%s", out);
    snprintf(cmd, sizeof cmd, "info --data %s --split train", cache);
    REQUIRE(esm_test_run_cli(cmd, out, sizeof out, errb, sizeof errb) == 0);
    CHECKF(strstr(out, "\"classes\":2") && strstr(out, "\"images\":4") && strstr(out, "\"normalize\":true"), "%s",
           out);
    snprintf(cmd, sizeof cmd, "prepare --csv %s/train.csv --out %s", dir, cache);
    esm_test_expect_cli_error(t_, cmd, "--csv", "--images");
}
