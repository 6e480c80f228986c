/* Option parsing of every subcommand (cli/args.c over cli/options.c): the input is argv, its
 * arguments separated by NUL bytes; the first names the subcommand (else its first byte picks
 * one). Each parse must end with a message exactly when it fails, and parsing is reentrant:
 * a second parse of the same arguments gives the same result and message; an option refused
 * is named as the user wrote it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/args.h"
#include "fuzz_target.h"

static const char *const CMDS[] = {"info", "sample", "eval", "embed", "prepare", "train"};
enum { N_CMDS = sizeof CMDS / sizeof *CMDS };

static cli_opts_result parse(int cmd, int argc, char **argv, char *msg, size_t cap)
{
    union {
        info_args info;
        sample_args sample;
        eval_args eval;
        embed_args embed;
        prepare_args prepare;
        train_args train;
    } a;
    switch (cmd) {
    case 0: return cli_args_info(argc, argv, &a.info, msg, cap);
    case 1: return cli_args_sample(argc, argv, &a.sample, msg, cap);
    case 2: return cli_args_eval(argc, argv, &a.eval, msg, cap);
    case 3: return cli_args_embed(argc, argv, &a.embed, msg, cap);
    case 4: return cli_args_prepare(argc, argv, &a.prepare, msg, cap);
    default: return cli_args_train(argc, argv, &a.train, msg, cap);
    }
}

FUZZ_TARGET(cli)
{
    if (size < 1)
        return 0;
    char *text = malloc(size + 1);
    char **argv = malloc(sizeof *argv * (size + 2)), **again = malloc(sizeof *argv * (size + 2));
    if (!text || !argv || !again)
        abort();
    memcpy(text, data, size);
    text[size] = 0;
    int argc = 0;
    for (char *p = text; p <= text + size; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    int cmd = data[0] % N_CMDS;
    for (int i = 0; i < N_CMDS; i++)
        if (!strcmp(argv[0], CMDS[i]))
            cmd = i;
    memcpy(again, argv, sizeof *argv * (size_t)(argc + 1));
    char msg[600], msg2[600];
    cli_opts_result r = parse(cmd, argc, argv, msg, sizeof msg);
    if ((r == CLI_OPTS_ERROR) != (msg[0] != 0) || memchr(msg, 0, sizeof msg) == NULL)
        abort(); /* a failure without its message, or a message for no failure */
    static const char unknown[] = "unknown or incomplete option '";
    if (r == CLI_OPTS_ERROR && !strncmp(msg, unknown, sizeof unknown - 1)) {
        int named = 0;
        for (int i = 1; i < argc && !named; i++) {
            snprintf(msg2, sizeof msg2, "%s%s'", unknown, argv[i]);
            named = argv[i][0] == '-' && !strcmp(msg, msg2);
        }
        if (!named)
            abort(); /* the message names some other argument */
    }
    cli_opts_result r2 = parse(cmd, argc, again, msg2, sizeof msg2);
    if (r2 != r || strcmp(msg, msg2) != 0)
        abort(); /* state kept from one parse to the next */
    free(text), free(argv), free(again);
    return 0;
}
