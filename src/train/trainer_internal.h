/* What trainers share: the common state and the interface each trainer implements. */
#ifndef ESM_TRAIN_TRAINER_INTERNAL_H
#define ESM_TRAIN_TRAINER_INTERNAL_H

#include "esmeta/train.h"
#include "train/ckpt_file.h"

#define ESM_TRAINER_MAX_SECTIONS 16

typedef struct {
    const char *name;
    /* Allocates the trainer's own state for t->cfg (params are initialised already). */
    esm_status (*init)(esm_trainer *t, esm_err *err);
    esm_status (*step)(esm_trainer *t, esm_train_stats *stats, esm_err *err);
    /* Appends its sections (pointers into its state) after the common ones; returns how many. */
    int (*sections)(const esm_trainer *t, esm_ckpt_section *out, int cap);
    /* Restores its state from a checkpoint after init. */
    esm_status (*restore)(esm_trainer *t, const esm_ckpt *c, esm_err *err);
    void (*free)(esm_trainer *t);
    /* Optional: the trainer's ranks changed (t->dist is set); per-rank resources may move. */
    esm_status (*dist_changed)(esm_trainer *t, esm_err *err);
} esm_trainer_ops;

struct esm_trainer {
    esm_train_config cfg;
    const esm_trainer_ops *ops;
    const esm_dataset *ds;
    const esm_split *sp;
    esm_net net;
    float *params;       /* (net.n_params) the model (for ES: the centre) */
    float *bn_running;   /* (net.n_bn) evaluation statistics */
    int64_t done;        /* steps completed */
    esm_dist *dist;      /* the ranks sharing each step; NULL = this process alone */
    esm_shard_mode shard_mode;
    int sharded;         /* the ES update is split over the ranks (decided by esm_trainer_set_shard) */
    void *impl;          /* the trainer's own state */
};

extern const esm_trainer_ops esm_backprop_ops;
extern const esm_trainer_ops esm_es_trainer_ops;

int esm_config_to_text(const esm_train_config *c, char *buf, size_t cap);
esm_status esm_config_from_text(const char *text, size_t len, esm_train_config *c, const char *origin, esm_err *err);
/* Learning rate of step `done` (0-based) under halving. */
float esm_lr_at(const esm_train_config *c, int64_t done);
float esm_sigma_at(const esm_train_config *c, int64_t done); /* es: the sigma schedule's value */
/* 1 if every value is finite. */
int esm_all_finite(const float *x, size_t n);

#endif
