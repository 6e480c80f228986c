/* esmeta command-line entry: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    esm_cmd_fn fn;
    int computes; /* runs the network: check the BLAS first */
    const char *help;
} commands[] = {
    {"prepare", cmd_prepare, 0, "turn the raw Omniglot files into one binary cache file"},
    {"info", cmd_info, 0, "describe a split of the data as one JSON line"},
    {"sample", cmd_sample, 0, "show the classes and drawings of seeded episodes as JSON lines"},
    {"train", cmd_train, 1, "train a few-shot model by backprop or evolution strategies"},
    {"eval", cmd_eval, 1, "evaluate a saved model on seeded test episodes (mean accuracy, 95% CI)"},
    {"embed", cmd_embed, 1, "embed your own images with a saved model"},
    {NULL, NULL, 0, NULL},
};

static void print_version(void)
{
    esm_features f = esm_get_features();
    printf("{\"name\":\"esmeta\",\"version\":\"%s\",\"features\":{\"openmp\":%s,\"mpi\":%s,\"cuda\":%s,"
           "\"blas\":\"%s\"},\"blas\":",
           f.version, f.openmp ? "true" : "false", f.mpi ? "true" : "false", f.cuda ? "true" : "false", f.blas);
    cli_blas_json(stdout);
    printf("}\n");
}

static void print_help(FILE *f)
{
    fprintf(f, "usage: esmeta <command> [options]   (esmeta <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; commands[i].name; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n  --version  print version and compiled-in features as JSON\n");
}

int main(int argc, char **argv)
{
    cli_blas_setup(argv);
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        print_version();
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return 0;
    }
    for (size_t i = 0; commands[i].name; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].computes ? cli_blas_check(argv) : 0;
            return rc ? rc : commands[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "esmeta: unknown command '%s'; run 'esmeta --help' for the list\n", argv[1]);
    return 2;
}
