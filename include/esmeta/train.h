/* esmeta train: trainers (backprop, ES) behind one interface, checkpoints, and the standard
 * few-shot evaluation protocol.
 *
 * The caller drives the loop: create (or resume) a trainer, call esm_trainer_step until
 * esm_trainer_done, save when it wants. The library writes files only when asked to save. */
#ifndef ESMETA_TRAIN_H
#define ESMETA_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"
#include "esmeta/data.h"
#include "esmeta/dist.h"
#include "esmeta/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ESM_TRAINER_BACKPROP = 0, ESM_TRAINER_ES = 1 } esm_trainer_kind;

/* The largest ES population a trainer accepts (2^20): far above any useful one, and low enough
 * that every per-member buffer is sized without overflow. */
#define ESM_MAX_POP (1 << 20)

/* Everything that determines a run's outcome; saved whole in every checkpoint. */
typedef struct {
    esm_trainer_kind trainer;
    char split[256];           /* training split, as named on the command line */
    uint64_t split_hash;       /* of the split's class list: a resume must see the same classes */
    esm_episode_shape shape;   /* training episodes */
    int64_t steps;             /* episodes (backprop) or generations (ES) to run in all */
    uint64_t seed;
    esm_net_config net;
    float lr;
    int64_t lr_halve_every;    /* 0 = constant */
    float weight_decay;
    /* backprop only: episodes per step, spread over the ranks; their gradients are averaged in
     * episode order and the batch-norm running statistics follow their mean batch statistics */
    int episodes_per_step;
    /* ES only */
    char strategy[32];         /* "openai-es", "pgpe", "snes", "sep-cma" */
    int pop;                   /* population size */
    float sigma;               /* (initial) perturbation scale */
    int episodes_per_gen;      /* training episodes every member is scored on (the same for all) */
    int centre_every;          /* centre-network loss/accuracy every k generations; 0 = never */
    char device[16];           /* where members are scored: "cpu" (default), "cuda", "cuda-tf32" */
    /* images per chunk when scoring episodes streamed (esm_protonet_loss_stream: exact batch
     * statistics, memory independent of the episode's size, up to 3.8x the conv work when an
     * episode exceeds a chunk); 0 = whole episodes (the default; a chunk at least the episode's
     * size gives the same bits). CPU only. */
    int stream_chunk;
    /* Which ES optimiser rules the run was made under, so that a checkpoint resumes as it was
     * trained: 1 (from 2026-12-02): pgpe's ClipUp cap follows lr, openai-es weight decay on OpenAI's
     * scale (divided by sigma); 0 (checkpoints without the key): the cap stays at the strategy's
     * default and the decay is taken as the optimiser's own coefficient. */
    int es_rules;
    /* openai-es and pgpe: how member fitness becomes update weights, ESM_ES_SHAPING_RANKS (the
     * default, and what checkpoints without the key were trained with) or ESM_ES_SHAPING_ZSCORE */
    int shaping;
    /* openai-es: halve sigma every this many generations (0, the default: a fixed sigma) */
    int64_t sigma_halve_every;
} esm_train_config;

/* Snell et al.'s defaults for backprop: 60-way 5-shot 5-query, Adam 1e-3 halved every 2000. */
esm_train_config esm_train_config_default(esm_trainer_kind kind);
/* "backprop" or "es"; -1 if unknown. */
int esm_trainer_kind_parse(const char *name);
const char *esm_trainer_kind_name(esm_trainer_kind kind);

/* What one step did. */
typedef struct {
    int64_t step;        /* 1-based index of the step just taken */
    float loss, acc;     /* on the step's training episode(s) */
    float lr;
    int64_t images;      /* images passed through the network in the step */
    /* ES only (zero otherwise) */
    double fitness_mean, fitness_max, update_norm, sigma;
    int n_nonfinite;     /* members whose fitness was NaN or infinite */
    int has_centre;      /* centre_loss/centre_acc were measured this step */
    float centre_loss, centre_acc;
    double eval_s;       /* ES: seconds scoring this rank's members */
    double update_s;     /* ES: seconds in this rank's part of the update, collectives excluded */
    double update_cpu_s; /* ES: CPU seconds of this process (all its threads) in the update: the
                          * work itself, which wall time hides when ranks share cores */
} esm_train_stats;

typedef struct esm_trainer esm_trainer;

/* A fresh run on split sp of ds (both must outlive the trainer). */
esm_status esm_trainer_create(const esm_train_config *cfg, const esm_dataset *ds, const esm_split *sp,
                              esm_trainer **out, esm_err *err);
/* Continues the run saved in a checkpoint; sp must be the same split (checked). */
esm_status esm_trainer_resume(const char *ckpt_path, const esm_dataset *ds, const esm_split *sp, esm_trainer **out,
                              esm_err *err);
/* The same on another device ("cpu", "cuda", "cuda-tf32"; NULL keeps the saved one), e.g. to
 * continue a GPU run where there is no GPU. The run continues from the same state, but members
 * are scored with that device's arithmetic, so it is not bit-identical to one never moved. */
esm_status esm_trainer_resume_on(const char *ckpt_path, const char *device, const esm_dataset *ds,
                                 const esm_split *sp, esm_trainer **out, esm_err *err);
/* One step. ESM_ENONFINITE if the loss or an update is not finite: the trainer's state is
 * then left as it was before the step. */
esm_status esm_trainer_step(esm_trainer *t, esm_train_stats *stats, esm_err *err);
int64_t esm_trainer_steps_done(const esm_trainer *t);
/* Changes how many steps the run has in all (e.g. to extend a resumed run). */
esm_status esm_trainer_set_steps(esm_trainer *t, int64_t steps, esm_err *err);
const esm_train_config *esm_trainer_config(const esm_trainer *t);
/* Saves atomically; a crash mid-save leaves the previous file intact. */
esm_status esm_trainer_save(const esm_trainer *t, const char *path, esm_err *err);
void esm_trainer_free(esm_trainer *t);

/* Spreads the trainer's steps over the ranks of d (NULL: this process alone); d must outlive
 * the trainer. Every rank creates or resumes the same run and then calls this (collective):
 * it fails with ESM_EDIST unless all ranks hold the same state. Results are bit-identical for
 * any number of ranks. ES: each rank scores its share of the members and only per-member
 * fitness, loss and accuracy cross the wire; backprop: each rank takes its share of the
 * step's episodes and their gradients are gathered. Every 10 steps the ranks also compare a
 * hash of their state (ESM_EDIST if it differs). */
esm_status esm_trainer_set_dist(esm_trainer *t, esm_dist *d, esm_err *err);
/* How the ES update is spread over the ranks. Unsharded, every rank performs the whole update
 * (regenerating every member's noise over every parameter, O(P * n_params) work per rank) and
 * only per-member scalars travel. Sharded, each rank regenerates and sums the noise of its own
 * range of the parameters and the ranks gather the sums (esm_es_tell_sharded): O(P * n_params /
 * ranks) noise work, the O(n_params) rest of the update on every rank, and 8 bytes a parameter
 * per sum gathered each generation (docs/RESULTS.md gives the exact count). Both give the same
 * bits. AUTO shards when there are several ranks and P * n_params is at least
 * ESM_SHARD_AUTO_MIN_WORK (about 7 ms of noise work on one core at the measured 7 ns a member and
 * parameter), below which the gather's latency would cost about what it saves. */
typedef enum { ESM_SHARD_AUTO = 0, ESM_SHARD_ON = 1, ESM_SHARD_OFF = 2 } esm_shard_mode;
#define ESM_SHARD_AUTO_MIN_WORK (1 << 20)
/* Collective when there are several ranks (all must pass the same mode: ESM_EDIST otherwise).
 * Call after esm_trainer_set_dist; a later set_dist keeps the mode. */
esm_status esm_trainer_set_shard(esm_trainer *t, esm_shard_mode mode, esm_err *err);
/* 1 if the ES update is sharded over the ranks now. */
int esm_trainer_sharded(const esm_trainer *t);
/* Collective: ESM_EDIST unless every rank holds the same state (call before each save). */
esm_status esm_trainer_check_dist(esm_trainer *t, esm_err *err);
/* How often esm_trainer_step compares the ranks' states by itself. */
#define ESM_TRAINER_DIST_CHECK_EVERY 10

/* The model a trainer holds (the ES trainer's centre network), with the batch-norm
 * statistics used at evaluation. Pointers stay valid until the next step or free. */
typedef struct {
    esm_net net;
    const float *params;
    const float *bn_running;
} esm_model_view;
esm_model_view esm_trainer_model(const esm_trainer *t);

/* A model loaded from any trainer's checkpoint, for evaluation and embedding. */
typedef struct {
    esm_train_config cfg;
    esm_net net;
    float *params;
    float *bn_running;
} esm_model;
esm_status esm_model_load(const char *ckpt_path, esm_model *out, esm_err *err);
void esm_model_free(esm_model *m);

/* Hash of a split's class list (characters and rotations, in order). */
uint64_t esm_split_hash(const esm_dataset *ds, const esm_split *sp);

/* The standard protocol: n_episodes episodes of (seed, 0..n_episodes-1) from sp, evaluation-mode
 * batch norm; mean accuracy and the 95% confidence interval 1.96 * std / sqrt(n_episodes).
 * Episodes run in parallel (threads <= 0: OpenMP default); the result does not depend on the
 * thread count. */
typedef struct {
    double mean_acc, ci95, mean_loss;
    int episodes;
} esm_eval_result;
esm_status esm_evaluate(const esm_net *net, const float *params, const float *bn_running, const esm_dataset *ds,
                        const esm_split *sp, esm_episode_shape shape, int n_episodes, uint64_t seed, int threads,
                        esm_eval_result *out, esm_err *err);

#ifdef __cplusplus
}
#endif
#endif
