/* Data fixtures: the shared cache, miniature Omniglot folders built from the real zips,
 * and small files for bad-input tests. */
#define _GNU_SOURCE
#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "esmeta.h"
#include "harness.h"

const char *esm_test_cache(void)
{
    static char path[4096];
    const char *root = getenv("ESM_TEST_ROOT");
    snprintf(path, sizeof path, "%s/omniglot.esmc", root ? root : "/tmp");
    if (access(path, R_OK) == 0)
        return path;
    const char *data = esm_test_data_dir();
    if (!data)
        return NULL;
    esm_err err = {0};
    esm_dataset *ds = NULL;
    if (esm_dataset_load(data, NULL, &ds, &err) != ESM_OK || esm_cache_write(ds, path, &err) != ESM_OK) {
        fprintf(stderr, "    fixture: cannot prepare the cache: %s\n", err.msg);
        esm_dataset_free(ds);
        return NULL;
    }
    esm_dataset_free(ds);
    return path;
}

esm_dataset *esm_test_dataset(void)
{
    const char *cache = esm_test_cache();
    esm_dataset *ds = NULL;
    esm_err err = {0};
    if (cache && esm_cache_read(cache, &ds, &err) != ESM_OK)
        fprintf(stderr, "    fixture: cannot read the cache: %s\n", err.msg);
    return ds;
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    return mkdir(tmp, 0755) == 0 || access(tmp, F_OK) == 0;
}

static int write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* Copies entries of the first n_chars characters of one half into the chosen layout. */
static int mini_half(const char *src_zip, const char *half, const char *dir, int n_chars, esm_mini_layout layout)
{
    int zerr;
    zip_t *in = zip_open(src_zip, ZIP_RDONLY, &zerr);
    if (!in)
        return 0;
    char out_path[4096];
    snprintf(out_path, sizeof out_path, "%s/%s.zip", dir, half);
    zip_t *out = layout == MINI_DIRS ? NULL : zip_open(out_path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (layout != MINI_DIRS && !out) {
        zip_discard(in);
        return 0;
    }
    char last_char[1024] = "";
    int chars = 0, ok = 1;
    zip_int64_t n = zip_get_num_entries(in, 0);
    for (zip_int64_t i = 0; i < n && ok; i++) {
        const char *name = zip_get_name(in, (zip_uint64_t)i, 0);
        const char *slash = strrchr(name, '/');
        if (!slash || name[strlen(name) - 1] == '/')
            continue;
        size_t char_len = (size_t)(slash - name);
        if (strncmp(last_char, name, char_len) != 0 || last_char[char_len] != 0) {
            if (++chars > n_chars)
                break;
            snprintf(last_char, sizeof last_char, "%.*s", (int)char_len, name);
            if (layout == MINI_ZIP_WITH_DIR_ENTRIES)
                zip_dir_add(out, last_char, ZIP_FL_ENC_UTF_8);
        }
        zip_stat_t st;
        zip_stat_index(in, (zip_uint64_t)i, 0, &st);
        unsigned char *buf = malloc(st.size);
        zip_file_t *zf = zip_fopen_index(in, (zip_uint64_t)i, 0);
        ok = buf && zf && zip_fread(zf, buf, st.size) == (zip_int64_t)st.size;
        if (zf)
            zip_fclose(zf);
        if (ok && layout == MINI_DIRS) {
            char path[4096], folder[4096];
            snprintf(folder, sizeof folder, "%s/%s", dir, last_char);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            ok = mkdirs(folder) && write_bytes(path, buf, st.size);
            free(buf);
        } else if (ok) {
            zip_source_t *src = zip_source_buffer(out, buf, st.size, 1); /* libzip frees buf */
            ok = src && zip_file_add(out, name, src, ZIP_FL_ENC_UTF_8) >= 0;
        } else {
            free(buf);
        }
    }
    zip_discard(in);
    if (out && (!ok || zip_close(out) != 0)) {
        zip_discard(out);
        ok = 0;
    }
    return ok;
}

int esm_test_make_mini(const char *dir, int n_chars, esm_mini_layout layout, int with_splits)
{
    const char *data = esm_test_data_dir();
    static const char *const halves[2] = {"images_background", "images_evaluation"};
    if (!data || !mkdirs(dir))
        return 0;
    for (int h = 0; h < 2; h++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s.zip", data, halves[h]);
        if (!mini_half(src, halves[h], dir, n_chars, layout))
            return 0;
    }
    if (with_splits) {
        static const char *const names[] = {"train", "val", "trainval", "test"};
        char sdir[4096];
        snprintf(sdir, sizeof sdir, "%s/splits/vinyals", dir);
        mkdirs(sdir);
        for (int i = 0; i < 4; i++) {
            char from[4096], to[4200];
            snprintf(from, sizeof from, "%s/splits/vinyals/%s.txt", data, names[i]);
            snprintf(to, sizeof to, "%s/%s.txt", sdir, names[i]);
            if (!esm_test_copy_file(from, to, -1))
                return 0;
        }
    }
    return 1;
}

int esm_test_write_png(const char *path, int w, int h)
{
    unsigned char *px = malloc((size_t)w * h);
    if (!px)
        return 0;
    memset(px, 255, (size_t)w * h);
    px[0] = 0;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_GRAY;
    int ok = png_image_write_to_file(&img, path, 0, px, 0, NULL);
    free(px);
    return ok;
}

int esm_test_copy_file(const char *from, const char *to, long keep)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    int ok = in && out;
    long copied = 0;
    char buf[65536];
    size_t n;
    while (ok && (keep < 0 || copied < keep) && (n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (keep >= 0 && copied + (long)n > keep)
            n = (size_t)(keep - copied);
        ok = fwrite(buf, 1, n, out) == n;
        copied += (long)n;
    }
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok;
}

int esm_test_count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

int esm_test_count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}
