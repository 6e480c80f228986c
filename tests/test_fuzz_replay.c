/* Replays each fuzz harness's corpus (fuzz/corpus/<harness>/, seeds from real files plus the
 * inputs that once crashed) through the same harness source libFuzzer runs: a crash or a
 * sanitizer report fails the test; under `make test-asan` the sanitizers check each input. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef int (*fuzz_fn)(const uint8_t *, size_t);
int esm_fuzz_cache(const uint8_t *, size_t);
int esm_fuzz_cli(const uint8_t *, size_t);
int esm_fuzz_ckpt(const uint8_t *, size_t);
int esm_fuzz_es_state(const uint8_t *, size_t);
int esm_fuzz_split(const uint8_t *, size_t);
int esm_fuzz_zip(const uint8_t *, size_t);

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            unsigned char *b = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!b)
                break;
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Feeds every file of the harness's corpus folder; returns how many, or -1 without the folder. */
static int replay(const char *name, fuzz_fn fn)
{
    const char *src = getenv("ESM_TEST_SRCDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%sfuzz/corpus/%s", src ? src : "", src ? "/" : "", name);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "    cannot open %s (run the tests from the repository root or set ESM_TEST_SRCDIR)\n", dir);
        return -1;
    }
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        unsigned char *buf = slurp(path, &len);
        if (!buf)
            continue;
        fn(buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

/* Each corpus holds a few seeds at least: an empty folder would replay nothing and pass. */
TEST(fuzz_corpus_cache)
{
    int n = replay("cache", esm_fuzz_cache);
    CHECKF(n >= 2, "%d inputs replayed", n);
}

TEST(fuzz_corpus_cli)
{
    int n = replay("cli", esm_fuzz_cli);
    CHECKF(n >= 2, "%d inputs replayed", n);
}

TEST(fuzz_corpus_ckpt)
{
    int n = replay("ckpt", esm_fuzz_ckpt);
    CHECKF(n >= 2, "%d inputs replayed", n);
}

TEST(fuzz_corpus_es_state)
{
    int n = replay("es_state", esm_fuzz_es_state);
    CHECKF(n >= 2, "%d inputs replayed", n);
}

TEST(fuzz_corpus_split)
{
    int n = replay("split", esm_fuzz_split);
    CHECKF(n >= 2, "%d inputs replayed", n);
}

TEST(fuzz_corpus_zip)
{
    int n = replay("zip", esm_fuzz_zip);
    CHECKF(n >= 2, "%d inputs replayed", n);
}
