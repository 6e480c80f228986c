/* The training loop of `esmeta train` (cmd_train.c parses the arguments and opens the run):
 * steps, metrics lines, progress, evaluations, checkpoints, and how ranks fail together. */
#ifndef ESM_CLI_TRAIN_LOOP_H
#define ESM_CLI_TRAIN_LOOP_H

#include <stdint.h>

#include "args.h"
#include "cli.h"
#include "run_dir.h"

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

/* The evaluation's episodes during training, as --eval-way/--eval-shot/--eval-query give them. */
esm_episode_shape train_eval_shape(const train_args *a);

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
