/* The training loop of `esmeta train` (cmd_train.c parses the arguments and opens the run):
 * steps, metrics lines, progress, evaluations, checkpoints, and how ranks fail together. */
#ifndef ESM_CLI_TRAIN_LOOP_H
#define ESM_CLI_TRAIN_LOOP_H

#include <stdint.h>

#include "cli.h"
#include "run_dir.h"

typedef struct {
    const char *data, *split, *out, *resume, *trainer, *strategy, *eval_split, *device;
    long way, shot, query, width, depth, pop, episodes_per_gen, centre_every, threads, episodes_per_step, chunk;
    int has_chunk; /* --chunk was given (any value, so that a negative one is reported) */
    long long steps, lr_halve_every, checkpoint_every, eval_every, eval_episodes, eval_way, eval_shot, eval_query;
    uint64_t seed;
    float lr, sigma, weight_decay;
    long long budget_forwards; /* --budget-forwards: ES generations from member-image forwards; 0 = none */
    float time_limit; /* --time-limit: seconds of training in this process; 0 = none */
    int has_seed, has_lr, has_sigma, has_wd, steps_flag, quiet; /* steps_flag: 1 --episodes, 2 --generations */
    int eval_seen; /* --eval-seen-classes: evaluate on a split that shares classes with the training split */
    const char *shard_update; /* --shard-update auto|on|off (NULL: auto) */
} train_args;

typedef struct {
    const train_args *a;
    esm_trainer *t;
    run_dir rd;
    const esm_dataset *ds;
    esm_split eval_sp;
    int has_eval_sp;
    int eval_held_out; /* the eval split shares no class with the training split */
    esm_dist *dist;
    int lead;     /* rank 0: the one rank that writes files and prints results */
    int stopped;  /* some rank was asked to stop (agreed by all ranks) */
    int time_up;  /* the --time-limit budget ended the run (agreed by all ranks); not an interruption */
    uint64_t bytes_logged; /* esm_dist_bytes_sent when the last metrics line was written */
    double comm_logged;    /* esm_dist_comm_seconds then */
    double start, last_progress;
    double last_step_s; /* the last step's wall time: the progress line's rate */
    int64_t first_step; /* steps done when this process started: the time-left estimate's base */
} train_loop;

/* Prints this rank's error (naming the rank when there are several) and returns 1. */
int train_rank_error(const train_loop *L, const esm_err *err);
/* A failure only this rank sees: prints it and ends every rank of the job (the others would
 * wait for this one forever); returns 1 when there is no job to end. */
int train_local_error(const train_loop *L, const esm_err *err);
/* SIGINT/SIGTERM then make the loop finish its step, save, and stop. */
void train_catch_signals(void);
/* Whether SIGINT/SIGTERM came (after train_catch_signals). */
int train_stop_requested(void);
/* Runs the steps that remain; returns the exit status (130 if stopped by a signal, 0 if stopped by
 * --time-limit: the run is then saved and can be resumed like any other). */
int train_loop_run(train_loop *L, esm_err *err);

#endif
