/* The library's configuration field names (include/esmeta/core.h, esm_err.field) and the flags
 * that set them: the one place that knows both, so the library's messages reach CLI users in
 * the flags they typed. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *field, *flag;
} FIELD_FLAGS[] = {
    {"steps", "--episodes/--generations"},
    {"lr", "--lr"},
    {"lr_halve_every", "--lr-halve-every"},
    {"weight_decay", "--weight-decay"},
    {"episodes_per_step", "--episodes-per-step"},
    {"stream_chunk", "--chunk"},
    {"device", "--device"},
    {"trainer", "--trainer"},
    {"strategy", "--strategy"},
    {"pop", "--pop"},
    {"sigma", "--sigma"},
    {"episodes_per_gen", "--episodes-per-gen"},
    {"centre_every", "--centre-every"},
    {"split", "--split"},
    {"net.width", "--width"},
    {"net.depth", "--depth"},
    {"shape.way", "--way"},
    {"shape.shot", "--shot"},
    {"shape.query", "--query"},
    {"shape.channels", "--channels"},
    {"shape.height", "--size height"},
    {"shape.width", "--size width"},
    {"n_episodes", "--episodes"},
    {"shard_mode", "--shard-update"},
    {"shaping", "--shaping"},
    {"sigma_halve_every", "--sigma-halve-every"},
};

static int name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

const char *cli_field_flag(const char *field)
{
    for (size_t i = 0; field && i < sizeof FIELD_FLAGS / sizeof *FIELD_FLAGS; i++)
        if (!strcmp(FIELD_FLAGS[i].field, field))
            return FIELD_FLAGS[i].flag;
    return NULL;
}

/* The table's field name that starts msg + i as a word of prose, or -1: after a blank or '(' (not
 * inside a path or a flag such as "--pop"), and before a blank or punctuation (so "pop" is not
 * found in "population", nor "net" in "net.width"). */
static int field_at(const char *msg, size_t i)
{
    if (i > 0 && msg[i - 1] != ' ' && msg[i - 1] != '(')
        return -1;
    for (size_t k = 0; k < sizeof FIELD_FLAGS / sizeof *FIELD_FLAGS; k++) {
        size_t n = strlen(FIELD_FLAGS[k].field);
        const char *end = msg + i + n;
        if (!strncmp(msg + i, FIELD_FLAGS[k].field, n) && (!*end || strchr(" :,;)", *end) ||
                                                           (*end == '.' && !name_char(end[1]))))
            return (int)k;
    }
    return -1;
}

void cli_field_flags(const char *msg, char *out, size_t cap)
{
    size_t o = 0;
    int quoted = 0; /* inside '...' opened after a blank: a value the user gave, left as it is */
    for (size_t i = 0; msg[i] && o + 1 < cap;) {
        int k = quoted ? -1 : field_at(msg, i);
        if (k < 0) {
            if (msg[i] == '\'' && (quoted || i == 0 || msg[i - 1] == ' ' || msg[i - 1] == '('))
                quoted = !quoted; /* an apostrophe ("members' losses") opens nothing */
            out[o++] = msg[i++];
            continue;
        }
        int w = snprintf(out + o, cap - o, "%s", FIELD_FLAGS[k].flag);
        o = w < 0 || (size_t)w >= cap - o ? cap - 1 : o + (size_t)w;
        i += strlen(FIELD_FLAGS[k].field);
    }
    if (cap)
        out[o < cap ? o : cap - 1] = 0;
}
