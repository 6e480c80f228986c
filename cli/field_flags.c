/* The library's configuration field names (include/esmeta/core.h, esm_err.field) and the flags
 * that set them: the one place that knows both, so the library's messages reach CLI users in
 * the flags they typed. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *field, *flag;
} field_flag;

static const field_flag FIELD_FLAGS[] = {
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

/* `esmeta train`'s evaluation during training takes its episode shape and count from flags of its
 * own: a message about the evaluation's shape names these. */
static const field_flag EVAL_FIELD_FLAGS[] = {
    {"shape.way", "--eval-way"},
    {"shape.shot", "--eval-shot"},
    {"shape.query", "--eval-query"},
    {"n_episodes", "--eval-episodes"},
};

#define N_OF(a) (sizeof(a) / sizeof *(a))

static int name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

const char *cli_field_flag(const char *field)
{
    for (size_t i = 0; field && i < N_OF(FIELD_FLAGS); i++)
        if (!strcmp(FIELD_FLAGS[i].field, field))
            return FIELD_FLAGS[i].flag;
    return NULL;
}

/* The table's field name that starts msg + i as a word of prose, or -1: after a blank or '(' (not
 * inside a path or a flag such as "--pop"), and before a blank or punctuation (so "pop" is not
 * found in "population", nor "net" in "net.width"). */
static int field_at(const field_flag *table, size_t n_table, const char *msg, size_t i)
{
    if (i > 0 && msg[i - 1] != ' ' && msg[i - 1] != '(')
        return -1;
    for (size_t k = 0; k < n_table; k++) {
        size_t n = strlen(table[k].field);
        const char *end = msg + i + n;
        if (!strncmp(msg + i, table[k].field, n) && (!*end || strchr(" :,;)", *end) ||
                                                     (*end == '.' && !name_char(end[1]))))
            return (int)k;
    }
    return -1;
}

static void rewrite(const field_flag *table, size_t n_table, const char *msg, char *out, size_t cap)
{
    size_t o = 0;
    int quoted = 0; /* inside '...' opened after a blank: a value the user gave, left as it is */
    for (size_t i = 0; msg[i] && o + 1 < cap;) {
        int k = quoted ? -1 : field_at(table, n_table, msg, i);
        if (k < 0) {
            if (msg[i] == '\'' && (quoted || i == 0 || msg[i - 1] == ' ' || msg[i - 1] == '('))
                quoted = !quoted; /* an apostrophe ("members' losses") opens nothing */
            out[o++] = msg[i++];
            continue;
        }
        int w = snprintf(out + o, cap - o, "%s", table[k].flag);
        o = w < 0 || (size_t)w >= cap - o ? cap - 1 : o + (size_t)w;
        i += strlen(table[k].field);
    }
    if (cap)
        out[o < cap ? o : cap - 1] = 0;
}

void cli_field_flags(const char *msg, char *out, size_t cap)
{
    rewrite(FIELD_FLAGS, N_OF(FIELD_FLAGS), msg, out, cap);
}

void cli_eval_field_flags(esm_err *err)
{
    if (!err || !err->field)
        return;
    char msg[sizeof err->msg];
    rewrite(EVAL_FIELD_FLAGS, N_OF(EVAL_FIELD_FLAGS), err->msg, msg, sizeof msg);
    /* the rest of the fields it may name are the run's own: their usual flags */
    cli_field_flags(msg, err->msg, sizeof err->msg);
    err->field = NULL; /* written in flags already: cli_error prints it as it is */
}
