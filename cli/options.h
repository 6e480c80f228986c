/* Option parsing of the subcommands: a table per subcommand says each long option's name, kind
 * and the field of the subcommand's argument struct it fills. Reentrant and silent (no global
 * state as getopt's optind, no printing, no exit), so that tests and fuzz/fuzz_cli.c call it. */
#ifndef ESM_CLI_OPTIONS_H
#define ESM_CLI_OPTIONS_H

#include <stddef.h>

typedef enum {
    CLI_OPT_STR,    /* const char *: the value itself (argv's storage) */
    CLI_OPT_LONG,   /* long, an integer in [min, max] */
    CLI_OPT_LLONG,  /* long long, an integer in [min, max] */
    CLI_OPT_U64,    /* uint64_t, digits only */
    CLI_OPT_FLOAT,  /* float, finite */
    CLI_OPT_SET,    /* no value: the int field becomes `set` */
    CLI_OPT_CUSTOM, /* parse() fills the field */
    CLI_OPT_HELP,   /* no value: parsing stops, CLI_OPTS_HELP */
} cli_opt_kind;

typedef struct {
    const char *name; /* without the leading "--" */
    cli_opt_kind kind;
    size_t off;       /* the field's offset in the argument struct */
    long long min, max;
    int set;          /* CLI_OPT_SET's value, and the value written at mark_at */
    size_t mark_at;   /* 0, or 1 + the offset of an int field set to `set` when the option is given */
    /* CLI_OPT_CUSTOM: 1, or 0 with the usage message in msg. flag is "--name". */
    int (*parse)(const char *flag, const char *value, void *field, char *msg, size_t cap);
} cli_opt;

/* A field's offset for mark_at: .mark_at = CLI_MARK(train_args, has_seed), .set = 1 */
#define CLI_MARK(type, field) (offsetof(type, field) + 1)

typedef enum { CLI_OPTS_OK, CLI_OPTS_HELP, CLI_OPTS_ERROR } cli_opts_result;

/* Parses argv[1..argc) (argv[0] is the subcommand) against table (ended by a NULL name) into
 * args, as getopt_long did: "--name value" or "--name=value", a unique prefix of a name, options
 * and operands in any order ("--" ends the options). argv is permuted so that the operands come
 * last, in their order, from *first_operand on. On CLI_OPTS_ERROR msg holds the one-line reason
 * naming the argument, without the "esmeta CMD: " prefix. */
cli_opts_result cli_parse_options(const cli_opt *table, int argc, char **argv, void *args, int *first_operand,
                                  char *msg, size_t cap);

/* Number parsers for option values: 1, or 0 with the usage message naming flag in msg. */
int cli_opt_llong(const char *flag, const char *value, long long min, long long max, long long *out, char *msg,
                  size_t cap);
int cli_opt_u64(const char *flag, const char *value, unsigned long long *out, char *msg, size_t cap);
int cli_opt_float(const char *flag, const char *value, float *out, char *msg, size_t cap);

#endif
