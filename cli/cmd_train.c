/* esmeta train: runs a trainer, writes metrics.jsonl and checkpoint.bin into a run folder.
 *
 * Under mpirun every rank runs this same command: each loads the data and creates (or
 * resumes) the same trainer, the trainer spreads each step over the ranks, and only rank 0
 * (the lead) writes files and prints. Failures every rank sees alike (a non-finite step,
 * diverged ranks) end every rank normally; a failure only one rank sees (a save, a missing
 * file) aborts the whole job, since the others would otherwise wait for it forever. */
#include <getopt.h>
#include <math.h>
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

enum { O_DATA = 1000, O_SPLIT, O_OUT, O_RESUME, O_TRAINER, O_STRATEGY, O_WAY, O_SHOT, O_QUERY, O_WIDTH, O_DEPTH,
       O_POP, O_EPG, O_CENTRE, O_THREADS, O_EPISODES, O_GENS, O_HALVE, O_CKPT, O_EVAL_EVERY, O_EVAL_EPISODES,
       O_EVAL_SPLIT, O_EVAL_WAY, O_EVAL_SHOT, O_EVAL_QUERY, O_SEED, O_LR, O_SIGMA, O_WD, O_QUIET, O_HELP, O_EPS,
       O_DEVICE, O_CHUNK, O_TIME_LIMIT, O_EVAL_SEEN, O_BUDGET, O_SHARD };

static const struct option OPTS[] = {
    {"data", 1, 0, O_DATA}, {"split", 1, 0, O_SPLIT}, {"out", 1, 0, O_OUT}, {"resume", 1, 0, O_RESUME},
    {"trainer", 1, 0, O_TRAINER}, {"strategy", 1, 0, O_STRATEGY}, {"way", 1, 0, O_WAY}, {"shot", 1, 0, O_SHOT},
    {"query", 1, 0, O_QUERY}, {"width", 1, 0, O_WIDTH}, {"depth", 1, 0, O_DEPTH}, {"pop", 1, 0, O_POP},
    {"episodes-per-gen", 1, 0, O_EPG}, {"centre-every", 1, 0, O_CENTRE}, {"threads", 1, 0, O_THREADS},
    {"episodes", 1, 0, O_EPISODES}, {"generations", 1, 0, O_GENS}, {"lr-halve-every", 1, 0, O_HALVE},
    {"checkpoint-every", 1, 0, O_CKPT}, {"eval-every", 1, 0, O_EVAL_EVERY}, {"eval-episodes", 1, 0, O_EVAL_EPISODES},
    {"eval-split", 1, 0, O_EVAL_SPLIT}, {"eval-way", 1, 0, O_EVAL_WAY}, {"eval-shot", 1, 0, O_EVAL_SHOT},
    {"eval-query", 1, 0, O_EVAL_QUERY}, {"seed", 1, 0, O_SEED}, {"lr", 1, 0, O_LR}, {"sigma", 1, 0, O_SIGMA},
    {"weight-decay", 1, 0, O_WD}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, O_HELP},
    {"episodes-per-step", 1, 0, O_EPS}, {"device", 1, 0, O_DEVICE}, {"chunk", 1, 0, O_CHUNK},
    {"time-limit", 1, 0, O_TIME_LIMIT}, {"eval-seen-classes", 0, 0, O_EVAL_SEEN},
    {"budget-forwards", 1, 0, O_BUDGET}, {"shard-update", 1, 0, O_SHARD},
    {0, 0, 0, 0}};

#define BIG 1000000000L

static int parse_long_opt(int c, const char *v, train_args *a)
{
    long x;
    long long *ll = NULL;
    long *l = NULL;
    const char *flag = NULL;
    for (const struct option *o = OPTS; o->name; o++)
        if (o->val == c)
            flag = o->name;
    switch (c) {
    case O_WAY: l = &a->way; break;
    case O_SHOT: l = &a->shot; break;
    case O_QUERY: l = &a->query; break;
    case O_WIDTH: l = &a->width; break;
    case O_DEPTH: l = &a->depth; break;
    case O_POP: l = &a->pop; break;
    case O_EPG: l = &a->episodes_per_gen; break;
    case O_CENTRE: l = &a->centre_every; break;
    case O_THREADS: l = &a->threads; break;
    case O_EPS: l = &a->episodes_per_step; break;
    case O_CHUNK: l = &a->chunk; a->has_chunk = 1; break;
    case O_EPISODES: ll = &a->steps; a->steps_flag = 1; break;
    case O_GENS: ll = &a->steps; a->steps_flag = 2; break;
    case O_BUDGET: ll = &a->budget_forwards; break;
    case O_HALVE: ll = &a->lr_halve_every; break;
    case O_CKPT: ll = &a->checkpoint_every; break;
    case O_EVAL_EVERY: ll = &a->eval_every; break;
    case O_EVAL_EPISODES: ll = &a->eval_episodes; break;
    case O_EVAL_WAY: ll = &a->eval_way; break;
    case O_EVAL_SHOT: ll = &a->eval_shot; break;
    case O_EVAL_QUERY: ll = &a->eval_query; break;
    default: return -1;
    }
    char name[64];
    snprintf(name, sizeof name, "--%s", flag);
    if (!cli_parse_int("train", name, v, -BIG, BIG, &x))
        return 0;
    if (l)
        *l = x;
    else
        *ll = x;
    return 1;
}

static int parse_args(int argc, char **argv, train_args *a)
{
    memset(a, 0, sizeof *a);
    a->way = a->shot = a->query = a->width = a->depth = a->pop = a->episodes_per_gen = a->centre_every = -1;
    a->episodes_per_step = -1;
    a->steps = a->lr_halve_every = -1;
    a->checkpoint_every = 500;
    a->eval_episodes = 100, a->eval_way = 5, a->eval_shot = 5, a->eval_query = 15;
    a->eval_split = "val";
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", OPTS, NULL)) != -1;) {
        int ok = 1;
        switch (c) {
        case O_DATA: a->data = optarg; break;
        case O_SPLIT: a->split = optarg; break;
        case O_OUT: a->out = optarg; break;
        case O_RESUME: a->resume = optarg; break;
        case O_TRAINER: a->trainer = optarg; break;
        case O_STRATEGY: a->strategy = optarg; break;
        case O_EVAL_SPLIT: a->eval_split = optarg; break;
        case O_DEVICE: a->device = optarg; break;
        case O_SHARD: a->shard_update = optarg; break;
        case O_SEED: ok = cli_parse_u64("train", "--seed", optarg, &a->seed), a->has_seed = 1; break;
        case O_LR: ok = cli_parse_float("train", "--lr", optarg, &a->lr), a->has_lr = 1; break;
        case O_SIGMA: ok = cli_parse_float("train", "--sigma", optarg, &a->sigma), a->has_sigma = 1; break;
        case O_WD: ok = cli_parse_float("train", "--weight-decay", optarg, &a->weight_decay), a->has_wd = 1; break;
        case O_TIME_LIMIT: ok = cli_parse_float("train", "--time-limit", optarg, &a->time_limit); break;
        case O_QUIET: a->quiet = 1; break;
        case O_EVAL_SEEN: a->eval_seen = 1; break;
        case O_HELP: help(); exit(0);
        case '?':
        case ':': cli_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]); return 0;
        default: ok = parse_long_opt(c, optarg, a); break;
        }
        if (!ok)
            return 0;
    }
    if (optind < argc) {
        cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
        return 0;
    }
    if (a->shard_update && strcmp(a->shard_update, "auto") && strcmp(a->shard_update, "on") &&
        strcmp(a->shard_update, "off")) {
        cli_usage_error("train", "--shard-update '%s': use auto, on or off", a->shard_update);
        return 0;
    }
    if (!a->out == !a->resume) {
        cli_usage_error("train", "give exactly one of --out RUN_DIR (a new run) and --resume RUN_DIR");
        return 0;
    }
    return 1;
}

/* Flags that describe the run itself cannot change on resume (the checkpoint has them). */
static int check_resume_flags(const train_args *a)
{
    if (a->split || a->way >= 0 || a->shot >= 0 || a->query >= 0 || a->width >= 0 || a->depth >= 0 ||
        a->pop >= 0 || a->episodes_per_gen >= 0 || a->has_seed || a->has_lr || a->has_sigma || a->has_wd ||
        a->lr_halve_every >= 0 || a->centre_every >= 0 || a->episodes_per_step >= 0 ||
        a->has_chunk) {
        cli_usage_error("train", "--resume continues a run with the configuration saved in its checkpoint; only "
                        "--data, --episodes/--generations, --device, --checkpoint-every, --eval-*, --threads, "
                        "--shard-update and --quiet may be given with it");
        return 0;
    }
    return 1;
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
    if (kind == ESM_TRAINER_BACKPROP &&
        (a->strategy || a->pop >= 0 || a->has_sigma || a->episodes_per_gen >= 0 || a->device || a->has_chunk)) {
        cli_usage_error("train", "--strategy, --pop, --sigma, --episodes-per-gen, --device and --chunk are for "
                        "--trainer es");
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
    if (a->has_seed) cfg->seed = a->seed;
    if (a->has_lr) cfg->lr = a->lr;
    if (a->has_sigma) cfg->sigma = a->sigma;
    if (a->has_wd) cfg->weight_decay = a->weight_decay;
    return 1;
}

static int check_eval_args(const train_args *a)
{
    if (!(a->time_limit >= 0) || !isfinite(a->time_limit)) {
        cli_usage_error("train", "--time-limit %g: give the training budget in seconds (> 0)", (double)a->time_limit);
        return 0;
    }
    if (a->eval_every < 0 || a->checkpoint_every < 0 || a->eval_episodes < 1) {
        cli_usage_error("train", "--eval-every and --checkpoint-every must be >= 0 and --eval-episodes >= 1");
        return 0;
    }
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
        return !L->lead || run_dir_resume(&L->rd, a->resume, esm_trainer_steps_done(L->t), err);
    }
    esm_train_config cfg;
    if (!build_config(a, &cfg))
        return -1;
    if (esm_split_get(L->ds, cfg.split, sp, err) != ESM_OK || esm_trainer_create(&cfg, L->ds, sp, &L->t, err) != ESM_OK ||
        !apply_budget(L, err))
        return 0;
    return !L->lead || run_dir_create(&L->rd, a->out, err);
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
         !check_held_out(L, sp, err)))
        return train_local_error(L, err);
    L->start = L->last_progress = cli_now();
    L->first_step = esm_trainer_steps_done(L->t);
    return train_loop_run(L, err);
}

int cmd_train(int argc, char **argv)
{
    train_args a;
    if (!parse_args(argc, argv, &a) || (a.resume && !check_resume_flags(&a)) || !check_eval_args(&a))
        return 2;
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
    run_dir_close(&L.rd);
    esm_trainer_free(L.t);
    if (L.has_eval_sp)
        esm_split_free(&L.eval_sp);
    esm_split_free(&sp);
    esm_dataset_free(ds);
    esm_dist_free(L.dist);
    return rc;
}
