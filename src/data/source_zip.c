/* Reads one Omniglot half from its official zip with libzip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "data/raw_files.h"

static int wanted_entry(const char *name, const char *top, size_t top_len)
{
    size_t n = strlen(name);
    if (n == 0 || name[n - 1] == '/')
        return 0; /* directory entry: zips may or may not have them */
    if (strncmp(name, top, top_len) != 0 || name[top_len] != '/')
        return 0;
    const char *base = strrchr(name, '/') + 1;
    if (base[0] == '.')
        return 0; /* macOS resource forks and other hidden files */
    return n > 4 && strcmp(name + n - 4, ".png") == 0;
}

static esm_status read_entry(zip_t *za, zip_uint64_t i, const char *zip_path, const char *name, unsigned char **out,
                             size_t *len, esm_err *err)
{
    zip_stat_t st;
    if (zip_stat_index(za, i, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return esm_fail(err, ESM_EFORMAT, "%s: cannot read entry %s (%s); the zip is damaged, fetch it again",
                        zip_path, name, zip_strerror(za));
    if (st.size > (64u << 20))
        return esm_fail(err, ESM_EFORMAT, "%s: entry %s is implausibly large", zip_path, name);
    unsigned char *buf = malloc(st.size ? st.size : 1);
    if (!buf)
        return esm_fail(err, ESM_ENOMEM, "%s: out of memory", zip_path);
    zip_file_t *zf = zip_fopen_index(za, i, 0);
    zip_int64_t got = zf ? zip_fread(zf, buf, st.size) : -1;
    int close_rc = zf ? zip_fclose(zf) : -1;
    if (got < 0 || (zip_uint64_t)got != st.size || close_rc != 0) {
        free(buf);
        return esm_fail(err, ESM_EFORMAT, "%s: entry %s is corrupt (%s); the zip is damaged, fetch it again",
                        zip_path, name, zip_strerror(za));
    }
    *out = buf;
    *len = st.size;
    return ESM_OK;
}

esm_status esm_raw_from_zip(const char *zip_path, const char *top, esm_raw_list *out, esm_err *err)
{
    snprintf(out->origin, sizeof out->origin, "%s", zip_path);
    int zerr = 0;
    zip_t *za = zip_open(zip_path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        esm_status st = esm_fail(err, ESM_EFORMAT, "%s: not a readable zip (%s); it may be truncated: fetch it again "
                                 "with scripts/fetch-omniglot", zip_path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    size_t top_len = strlen(top);
    zip_int64_t n = zip_get_num_entries(za, 0);
    esm_status st = ESM_OK;
    for (zip_int64_t i = 0; i < n && st == ESM_OK; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (!name || !wanted_entry(name, top, top_len))
            continue;
        size_t char_len;
        const char *rel = name + top_len + 1;
        if (!esm_raw_split_rel(rel, &char_len)) {
            st = esm_fail(err, ESM_EFORMAT, "%s: unexpected entry %s; expected %s/<Alphabet>/<characterNN>/<file>.png",
                          zip_path, name, top);
            break;
        }
        unsigned char *bytes = NULL;
        size_t len = 0;
        st = read_entry(za, (zip_uint64_t)i, zip_path, name, &bytes, &len, err);
        if (st == ESM_OK)
            st = esm_raw_add(out, rel, bytes, len, err);
    }
    zip_discard(za);
    if (st == ESM_OK && out->n == 0)
        st = esm_fail(err, ESM_EFORMAT, "%s: no %s/<Alphabet>/<characterNN>/*.png entries; is this the official "
                      "Omniglot zip?", zip_path, top);
    return st;
}
