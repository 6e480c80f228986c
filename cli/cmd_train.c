/* esmeta train: runs a trainer, writes metrics.jsonl and checkpoint.bin into a run folder.
 *
 * Under mpirun every rank runs this same command: each loads the data and creates (or
 * resumes) the same trainer, the trainer spreads each step over the ranks, and only rank 0
 * (the lead) writes files and prints. Failures every rank sees alike (a non-finite step,
 * diverged ranks) end every rank normally; a failure only one rank sees (a save, a missing
 * file) aborts the whole job, since the others would otherwise wait for it forever. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "train_loop.h"

static void help(void)
{
    printf(
        "usage: esmeta train --out RUN_DIR [options]      (a new run)\n"
        "       esmeta train --resume RUN_DIR [options]   (continue a run; --episodes/--generations extend it)\n"
        "  --trainer backprop|es     how to train (default backprop)\n"
        "  --data PATH               Omniglot folder or cache (default: $ESMETA_DATA, ../shared/data/omniglot, ...)\n"
        "  --split NAME              training split (default trainval)\n"
        "  --way N --shot K --query Q  training episode shape (backprop default 60/5/5, es 5/5/5)\n"
        "  --seed S                  seeds initialisation and episodes (default 1)\n"
        "  --width C --depth B       conv-4 model: channels per block and blocks (default 64, 4)\n"
        "  --lr L                    learning rate (backprop: Adam 1e-3; es: 2e-3)\n"
        "  --lr-halve-every N        halve the rate every N steps (backprop default 2000, es 0; 0 = never)\n"
        "  --weight-decay W          L2 weight decay (default 0)\n"
        "  backprop:  --episodes N   training episodes (default 10000)\n"
        "  es:        --generations N (default 1000)  --strategy openai-es|pgpe|snes|sep-cma (default openai-es)\n"
        "             --pop P (default 32)  --sigma S (default 0.02)  --episodes-per-gen E (default 1)\n"
        "             --shaping ranks|zscore  member weights of openai-es and pgpe: centred ranks (default)\n"
        "                            or z-scored fitness\n"
        "             --sigma-halve-every N  openai-es: halve sigma every N generations (default 0 = fixed)\n"
        "             --centre-every K  centre-network loss/accuracy every K generations (default 10)\n"
        "             --device cpu|cuda|cuda-tf32  where members are scored (default cpu; cuda needs a CUDA build\n"
        "                            and a GPU; cuda-tf32 lets the conv GEMMs use TF32 tensor cores)\n"
        "             --chunk N  score episodes streamed, N images at a time (exact batch norm; memory does\n"
        "                            not grow with the episode; up to 3.8x the conv work; cpu only; default 0 = off)\n"
        "  --checkpoint-every N      save every N steps (default 500) and at the end\n"
        "  es:        --budget-forwards N  run as many generations as N member-image forwards buy\n"
        "             (pop x episodes-per-gen x way x (shot + query) a generation; instead of --generations)\n"
        "  --time-limit SECONDS      stop before a step would end past this much training time in this process;\n"
        "                            saves, exits 0, \"interrupted\":false, \"time_limited\":true; --resume continues\n"
        "  --eval-every N            validation accuracy every N steps (default 0 = never) on --eval-split\n"
        "                            (default val) with --eval-episodes (100) of --eval-way/--eval-shot/--eval-query\n"
        "                            (5/5/15). Refused when that split shares classes with the training split (val is\n"
        "                            inside trainval): train on train to validate on val, or monitor a held-out split\n"
        "  --eval-seen-classes       evaluate on such a split anyway; its lines say \"held_out\":false\n"
        "  backprop:  --episodes-per-step E  episodes averaged into each Adam step (default 1); under\n"
        "             mpirun they are spread over the ranks\n"
        "  --shard-update auto|on|off  under mpirun, split the ES update's noise work over the ranks by\n"
        "                            parameter ranges and gather the sums (same bits either way; default auto:\n"
        "                            when pop x parameters >= 2^20)\n"
        "  --threads T               OpenMP threads (default: OMP_NUM_THREADS or all cores; per rank under mpirun)\n"
        "  --quiet                   no progress lines on stderr\n"
        "Writes RUN_DIR/metrics.jsonl (one JSON line per step) and RUN_DIR/checkpoint.bin; prints a JSON summary.\n"
        "Distributed: mpirun -np N esmeta train ... gives bit-identical results for any N (and --resume may use\n"
        "another N); rank 0 writes the files; metrics' comm_bytes counts the bytes rank 0 sent in each step,\n"
        "comm_s its seconds in collectives, eval_s and update_s (es) its seconds scoring members and updating.\n");
}

static int build_config(const train_args *a, esm_train_config *cfg)
{
    int kind = esm_trainer_kind_parse(a->trainer ? a->trainer : "backprop");
    if (kind < 0) {
        cli_usage_error("train", "--trainer '%s': use backprop or es", a->trainer);
        return 0;
    }
    *cfg = esm_train_config_default((esm_trainer_kind)kind);
    if ((kind == ESM_TRAINER_ES && a->steps_flag == 1) || (kind == ESM_TRAINER_BACKPROP && a->steps_flag == 2)) {
        cli_usage_error("train", "the %s trainer counts %s", kind == ESM_TRAINER_ES ? "es" : "backprop",
                        kind == ESM_TRAINER_ES ? "--generations" : "--episodes");
        return 0;
    }
    /* --device and --chunk with backprop are the library's to refuse (they are configuration
     * fields it checks); these are options the backprop configuration ignores. */
    if (kind == ESM_TRAINER_BACKPROP &&
        (a->strategy || a->pop >= 0 || a->has_sigma || a->episodes_per_gen >= 0 || a->shaping ||
         a->sigma_halve_every >= 0)) {
        cli_usage_error("train", "--strategy, --pop, --sigma, --sigma-halve-every, --shaping and --episodes-per-gen "
                        "are for --trainer es");
        return 0;
    }
    if (kind == ESM_TRAINER_ES && a->episodes_per_step >= 0) {
        cli_usage_error("train", "--episodes-per-step is for --trainer backprop (es: --episodes-per-gen)");
        return 0;
    }
    if (a->episodes_per_step >= 0) cfg->episodes_per_step = (int)a->episodes_per_step;
    if (a->split)
        snprintf(cfg->split, sizeof cfg->split, "%s", a->split);
    if (a->strategy && snprintf(cfg->strategy, sizeof cfg->strategy, "%s", a->strategy) >= (int)sizeof cfg->strategy) {
        cli_usage_error("train", "--strategy '%s' is not a strategy name", a->strategy);
        return 0;
    }
    if (a->shaping && (cfg->shaping = esm_es_shaping_parse(a->shaping)) < 0) {
        cli_usage_error("train", "--shaping '%s' is unknown: use ranks or zscore", a->shaping);
        return 0;
    }
    if (a->device && snprintf(cfg->device, sizeof cfg->device, "%s", a->device) >= (int)sizeof cfg->device) {
        cli_usage_error("train", "--device '%s' is unknown: use cpu, cuda or cuda-tf32", a->device);
        return 0;
    }
    if (a->way >= 0) cfg->shape.way = (int)a->way;
    if (a->shot >= 0) cfg->shape.shot = (int)a->shot;
    if (a->query >= 0) cfg->shape.query = (int)a->query;
    if (a->width >= 0) cfg->net.width = (int)a->width;
    if (a->depth >= 0) cfg->net.depth = (int)a->depth;
    if (a->pop >= 0) cfg->pop = (int)a->pop;
    if (a->episodes_per_gen >= 0) cfg->episodes_per_gen = (int)a->episodes_per_gen;
    if (a->centre_every >= 0) cfg->centre_every = (int)a->centre_every;
    if (a->has_chunk) cfg->stream_chunk = (int)a->chunk;
    if (a->steps >= 0) cfg->steps = a->steps;
    if (a->lr_halve_every >= 0) cfg->lr_halve_every = a->lr_halve_every;
    if (a->sigma_halve_every >= 0) cfg->sigma_halve_every = a->sigma_halve_every;
    if (a->has_seed) cfg->seed = a->seed;
    if (a->has_lr) cfg->lr = a->lr;
    if (a->has_sigma) cfg->sigma = a->sigma;
    if (a->has_wd) cfg->weight_decay = a->weight_decay;
    return 1;
}

/* --budget-forwards: a budget that means the same work on any machine (wall time does not), turned
 * into the generation count it buys. 0 and a message if it buys none or the run is not ES. */
static int apply_budget(train_loop *L, esm_err *err)
{
    const train_args *a = L->a;
    if (!a->budget_forwards)
        return 1;
    const esm_train_config *c = esm_trainer_config(L->t);
    if (c->trainer != ESM_TRAINER_ES || a->steps_flag || a->budget_forwards < 0) {
        esm_fail(err, ESM_EINVAL, "--budget-forwards %lld: a positive budget, for --trainer es, instead of "
                 "--generations", a->budget_forwards);
        return 0;
    }
    long long per = (long long)c->pop * c->episodes_per_gen * c->shape.way * (c->shape.shot + c->shape.query);
    if (a->budget_forwards < per) {
        esm_fail(err, ESM_EINVAL, "--budget-forwards %lld buys no generation: one costs %lld member-image forwards",
                 a->budget_forwards, per);
        return 0;
    }
    return esm_trainer_set_steps(L->t, a->budget_forwards / per, err) == ESM_OK;
}

/* Opens the trainer (fresh or resumed) and the run folder. */
static int open_run(train_loop *L, const train_args *a, esm_split *sp, esm_err *err)
{
    if (a->resume) {
        char ckpt[4200];
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.bin", a->resume);
        esm_model m;
        if (esm_model_load(ckpt, &m, err) != ESM_OK)
            return 0;
        esm_model_free(&m);
        if ((a->trainer && esm_trainer_kind_parse(a->trainer) != (int)m.cfg.trainer) ||
            (a->strategy && strcmp(a->strategy, m.cfg.strategy) != 0)) {
            esm_fail(err, ESM_EMISMATCH, "--resume %s: that run uses trainer %s%s%s; drop --trainer/--strategy or "
                     "start a new run with --out", a->resume, esm_trainer_kind_name(m.cfg.trainer),
                     m.cfg.trainer == ESM_TRAINER_ES ? " with strategy " : "",
                     m.cfg.trainer == ESM_TRAINER_ES ? m.cfg.strategy : "");
            return 0;
        }
        if (esm_split_get(L->ds, m.cfg.split, sp, err) != ESM_OK ||
            esm_trainer_resume_on(ckpt, a->device, L->ds, sp, &L->t, err) != ESM_OK)
            return 0;
        if ((a->steps >= 0 && esm_trainer_set_steps(L->t, a->steps, err) != ESM_OK) || !apply_budget(L, err))
            return 0;
        return 1;
    }
    esm_train_config cfg;
    if (!build_config(a, &cfg))
        return -1;
    if (esm_split_get(L->ds, cfg.split, sp, err) != ESM_OK || esm_trainer_create(&cfg, L->ds, sp, &L->t, err) != ESM_OK ||
        !apply_budget(L, err))
        return 0;
    return 1;
}

/* The run folder is made (or reopened) only once every check has passed: a refused run leaves none. */
static int open_run_dir(train_loop *L, const train_args *a, esm_err *err)
{
    if (!L->lead)
        return 1;
    if (a->resume)
        return run_dir_resume(&L->rd, a->resume, esm_trainer_steps_done(L->t), err);
    return run_dir_create(&L->rd, a->out, err);
}

/* An evaluation on classes the run trains on is not a validation: refused unless asked for
 * (--eval-seen-classes), and then labelled in every line. */
static int check_held_out(train_loop *L, const esm_split *train_sp, esm_err *err)
{
    const train_args *a = L->a;
    int shared = esm_split_shared(L->ds, train_sp, &L->eval_sp);
    if (shared < 0) {
        esm_fail(err, ESM_ENOMEM, "out of memory comparing the training and evaluation splits");
        return 0;
    }
    L->eval_held_out = shared == 0;
    if (shared == 0 || a->eval_seen)
        return 1;
    const char *train_name = esm_trainer_config(L->t)->split;
    esm_fail(err, ESM_EINVAL, "--eval-split %s: %d of its %d classes are training classes of --split %s, so its "
             "accuracy is not held out; train on --split train to validate on val, evaluate a split the run never "
             "trains on (and choose nothing on test), or add --eval-seen-classes to measure it labelled as seen",
             a->eval_split, shared, L->eval_sp.n_classes, train_name);
    return 0;
}

/* The evaluation's episodes must fit its split now, not after the first --eval-every steps. */
static int check_eval_shape(const train_loop *L, esm_err *err)
{
    if (esm_episode_check(&L->eval_sp, train_eval_shape(L->a), err) == ESM_OK)
        return 1;
    cli_eval_field_flags(err);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, " (--eval-split %s)", L->a->eval_split);
    return 0;
}

/* Everything after the data is loaded; returns the exit status. */
static int train(train_loop *L, esm_split *sp, esm_err *err)
{
    const train_args *a = L->a;
    int opened = open_run(L, a, sp, err);
    if (opened < 0)
        return 2; /* a usage error: every rank saw the same arguments */
    if (opened == 0)
        return train_local_error(L, err);
    esm_shard_mode shard = !a->shard_update || !strcmp(a->shard_update, "auto") ? ESM_SHARD_AUTO
                           : !strcmp(a->shard_update, "on")                        ? ESM_SHARD_ON
                                                                                   : ESM_SHARD_OFF;
    if (!cli_check_same_binary(L->dist, err) || esm_trainer_set_dist(L->t, L->dist, err) != ESM_OK ||
        esm_trainer_set_shard(L->t, shard, err) != ESM_OK)
        return train_rank_error(L, err);
    if (L->lead && a->eval_every > 0 &&
        (!(L->has_eval_sp = esm_split_get(L->ds, a->eval_split, &L->eval_sp, err) == ESM_OK) ||
         !check_held_out(L, sp, err) || !check_eval_shape(L, err)))
        return train_local_error(L, err);
    if (!open_run_dir(L, a, err))
        return train_local_error(L, err);
    L->start = L->last_progress = cli_now();
    L->first_step = esm_trainer_steps_done(L->t);
    return train_loop_run(L, err);
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    char msg[600];
    int status = cli_args_status("train", cli_args_train(argc, argv, &a, msg, sizeof msg), msg, help);
    if (status >= 0)
        return status;
    if (a.threads > 0)
        omp_set_num_threads((int)a.threads);
    esm_err err = {0};
    train_loop L;
    memset(&L, 0, sizeof L);
    L.a = &a;
    if (esm_dist_init(&L.dist, &err) != ESM_OK)
        return cli_error(&err);
    /* From here on SIGINT/SIGTERM only set a flag: loading the data is not cut short, and no run
     * folder is then created for a run that was stopped before it began. */
    train_catch_signals();
    L.lead = esm_dist_rank(L.dist) == 0;
    esm_dataset *ds = NULL;
    esm_split sp = {0};
    int rc;
    if (!cli_load_dataset(a.data, &ds, &err)) {
        rc = train_local_error(&L, &err);
    } else if (train_stop_requested() && esm_dist_size(L.dist) <= 1) {
        fprintf(stderr, "esmeta train: interrupted while loading the data; nothing was written\n");
        rc = 130;
    } else {
        L.ds = ds;
        rc = train(&L, &sp, &err);
    }
    run_dir_close(&L.rd, NULL); /* on the way out of a failure: it was reported */
    esm_trainer_free(L.t);
    if (L.has_eval_sp)
        esm_split_free(&L.eval_sp);
    esm_split_free(&sp);
    esm_dataset_free(ds);
    esm_dist_free(L.dist);
    return rc;
}
