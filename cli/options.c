/* Table-driven long options (cli/options.h): what getopt_long did for the subcommands, without
 * its global state. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int cli_opt_llong(const char *flag, const char *value, long long min, long long max, long long *out, char *msg,
                  size_t cap)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end) {
        snprintf(msg, cap, "%s '%s' is not an integer", flag, value);
        return 0;
    }
    if (v < min || v > max) {
        snprintf(msg, cap, "%s %lld is out of range [%lld, %lld]", flag, v, min, max);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_opt_u64(const char *flag, const char *value, unsigned long long *out, char *msg, size_t cap)
{
    char *end;
    errno = 0;
    /* strtoull skips blanks and then negates: " -1" would be 2^64 - 1. */
    const char *p = value;
    while (isspace((unsigned char)*p))
        p++;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || end == value || *end || *p == '-') {
        snprintf(msg, cap, "%s '%s' is not a non-negative integer", flag, value);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_opt_float(const char *flag, const char *value, float *out, char *msg, size_t cap)
{
    char *end;
    errno = 0;
    float v = strtof(value, &end);
    if (errno || end == value || *end || !isfinite(v)) {
        snprintf(msg, cap, "%s '%s' is not a finite number", flag, value);
        return 0;
    }
    *out = v;
    return 1;
}

/* The option named by arg ("--name" or "--name=value"): an exact name, else the one name it is
 * a prefix of; NULL when none or several. */
static const cli_opt *find(const cli_opt *table, const char *name, size_t len)
{
    const cli_opt *prefix_of = NULL;
    int n_prefix = 0;
    for (const cli_opt *o = table; o->name; o++) {
        if (strncmp(o->name, name, len) != 0)
            continue;
        if (o->name[len] == 0)
            return o;
        prefix_of = o, n_prefix++;
    }
    return len > 0 && n_prefix == 1 ? prefix_of : NULL;
}

static int takes_value(cli_opt_kind k) { return k != CLI_OPT_SET && k != CLI_OPT_HELP; }

/* Stores value into o's field; 0 with msg set if it is not a valid value. */
static int apply(const cli_opt *o, const char *value, void *args, char *msg, size_t cap)
{
    void *field = (char *)args + o->off;
    char flag[96];
    snprintf(flag, sizeof flag, "--%s", o->name);
    long long ll;
    int ok = 1;
    switch (o->kind) {
    case CLI_OPT_STR: *(const char **)field = value; break;
    case CLI_OPT_LONG:
        if ((ok = cli_opt_llong(flag, value, o->min, o->max, &ll, msg, cap)))
            *(long *)field = (long)ll;
        break;
    case CLI_OPT_LLONG: ok = cli_opt_llong(flag, value, o->min, o->max, (long long *)field, msg, cap); break;
    case CLI_OPT_U64: {
        unsigned long long u;
        if ((ok = cli_opt_u64(flag, value, &u, msg, cap)))
            *(uint64_t *)field = u;
        break;
    }
    case CLI_OPT_FLOAT: ok = cli_opt_float(flag, value, (float *)field, msg, cap); break;
    case CLI_OPT_SET: *(int *)field = o->set; break;
    case CLI_OPT_CUSTOM: ok = o->parse(flag, value, field, msg, cap); break;
    case CLI_OPT_HELP: break;
    }
    if (ok && o->mark_at)
        *(int *)((char *)args + o->mark_at - 1) = o->set;
    return ok;
}

/* Moves argv[from..from+n) to argv[to..], shifting argv[to..from) (operands seen so far) after them. */
static void move_before(char **argv, int to, int from, int n)
{
    for (int k = 0; k < n; k++) {
        char *a = argv[from + k];
        memmove(argv + to + k + 1, argv + to + k, sizeof *argv * (size_t)(from - to));
        argv[to + k] = a;
    }
}

cli_opts_result cli_parse_options(const cli_opt *table, int argc, char **argv, void *args, int *first_operand,
                                  char *msg, size_t cap)
{
    msg[0] = 0;
    int opts_end = argc > 0 ? 1 : 0; /* argv[1..opts_end): the options seen, with their values */
    *first_operand = opts_end;
    for (int i = opts_end; i < argc;) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == 0) { /* an operand ("-" is one too) */
            i++;
            continue;
        }
        if (!strcmp(a, "--")) {
            move_before(argv, opts_end, i, 1);
            opts_end++;
            break;
        }
        const cli_opt *o = NULL;
        const char *value = NULL;
        int n = 1;
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            o = find(table, name, eq ? (size_t)(eq - name) : strlen(name));
            if (o && takes_value(o->kind)) {
                value = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
                n = eq ? 1 : 2;
                if (!value)
                    o = NULL;
            } else if (o && eq) {
                o = NULL;
            }
        }
        if (!o) {
            snprintf(msg, cap, "unknown or incomplete option '%s'", a);
            return CLI_OPTS_ERROR;
        }
        move_before(argv, opts_end, i, n);
        opts_end += n, i += n;
        if (o->kind == CLI_OPT_HELP)
            return CLI_OPTS_HELP;
        if (!apply(o, value, args, msg, cap))
            return CLI_OPTS_ERROR;
    }
    *first_operand = opts_end;
    return CLI_OPTS_OK;
}
