/* esmeta evolution strategies: ask/tell over flat float vectors.
 *
 * The library never calls the objective: the caller materialises members, evaluates them
 * however it likes (threads, processes, MPI ranks, a GPU) and hands back one fitness per
 * member. Fitness is MAXIMISED by every strategy (negate a loss).
 *
 * Noise is never stored. Member i of generation g perturbs the centre by standard normals
 * that are a pure function of (seed, g, i) (see esm_es_noise_range), so anyone holding the
 * seed, the generation and the centre/scales can rebuild any member, or any slice of one.
 * With antithetic sampling members 2k and 2k+1 share pair k's noise with opposite signs.
 *
 * tell() is bit-identical whatever the number of OpenMP threads: it works over fixed
 * chunks of coordinates and sums members in order 0..P-1 within each chunk.
 *
 *   esm_es_config cfg;
 *   esm_es_config_init(&cfg, "sep-cma", dim, &err);
 *   cfg.sigma0 = 0.5f;
 *   esm_es *es;
 *   esm_es_create(&es, &cfg, x0, &err);
 *   while (...) {
 *       for (int i = 0; i < esm_es_popsize(es); i++) {   // anywhere, in any order
 *           esm_es_member(es, i, theta);
 *           fitness[i] = objective(theta);
 *       }
 *       esm_es_tell(es, fitness, &report, &err);
 *   }
 *   esm_es_free(es);
 */
#ifndef ESMETA_ES_H
#define ESMETA_ES_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* First-order optimiser for the centre (openai-es and pgpe). All ascend: the direction
 * they follow is the fitness-gradient estimate minus weight_decay * centre. */
typedef enum {
    ESM_OPTIM_SGD,    /* theta += v, v = momentum * v + lr * g */
    ESM_OPTIM_ADAM,   /* Kingma & Ba 2015, with bias correction */
    ESM_OPTIM_CLIPUP  /* Toklu et al. 2020: normalised gradient, momentum, speed cap */
} esm_optim_kind;

typedef struct {
    esm_optim_kind kind;
    float lr;            /* > 0 */
    float momentum;      /* SGD and ClipUp, in [0, 1) */
    float beta1, beta2;  /* Adam, in [0, 1) */
    float eps;           /* Adam, > 0 */
    float max_speed;     /* ClipUp: cap on the velocity norm, > 0 */
    float weight_decay;  /* L2 coefficient, >= 0 */
} esm_optim_config;

/* Everything a strategy needs. Fill with esm_es_config_init (which sets the strategy's
 * documented defaults for this dim), then change what you want before esm_es_create.
 * Fields a strategy does not use are ignored. */
/* Fitness shaping of openai-es and pgpe (snes and sep-cma keep their own rank weights). With
 * antithetic pairs, z-scores weight each direction by its pair's fitness difference over the
 * generation's spread: the antithetic-difference estimator, normalised. */
typedef enum {
    ESM_ES_SHAPING_RANKS = 0,  /* centred ranks in [-0.5, 0.5] (Salimans et al. 2017) */
    ESM_ES_SHAPING_ZSCORE = 1, /* (fitness - mean) / standard deviation */
} esm_es_shaping;

typedef struct {
    const char *strategy;   /* "openai-es", "pgpe", "snes", "sep-cma" */
    size_t dim;             /* > 0 */
    int popsize;            /* >= 2; even when antithetic */
    uint64_t seed;          /* keys all noise */
    int antithetic;         /* 1: mirrored pairs (2k, 2k+1) */
    float sigma0;           /* initial (or, for openai-es, fixed) search std-dev, > 0 */
    esm_optim_config optim; /* centre optimiser: openai-es, pgpe */
    float sigma_lr;         /* pgpe, snes: learning rate of the per-coordinate sigmas, > 0 */
    float sigma_max_change; /* pgpe: largest relative change of a sigma per step, in (0, 1) */
    esm_es_shaping shaping; /* openai-es, pgpe: how fitness becomes member weights (default ranks) */
    float mean_lr;          /* snes: eta_mu; sep-cma: c_m. > 0 */
} esm_es_config;

/* What one tell() saw and did. */
typedef struct {
    int n_nonfinite;      /* fitness values that were NaN or +-inf (ranked last) */
    double fitness_mean;  /* over the finite values */
    double fitness_max;
    double update_norm;   /* Euclidean norm of the change of the centre */
    double sigma_mean;    /* mean per-coordinate search std-dev after the update */
} esm_es_report;

typedef struct esm_es esm_es;

/* "ranks" or "zscore" (the CLI's and the checkpoints' spelling); parse gives -1 if unknown. */
const char *esm_es_shaping_name(int shaping);
int esm_es_shaping_parse(const char *name);

/* The registered strategy names, NULL-terminated. */
const char *const *esm_es_strategy_names(void);

/* What a strategy leaves to its caller, as a set of these bits; 0 for an unknown name. Callers
 * ask this instead of comparing names, so a new strategy states it once, in its own file. */
enum {
    ESM_ES_CAN_SCHEDULE_SIGMA = 1 << 0, /* its sigma is fixed, set by the caller (esm_es_set_sigma) */
    ESM_ES_CAN_SHAPE = 1 << 1,          /* cfg.shaping chooses how fitness becomes member weights */
    ESM_ES_CAN_ESTIMATE = 1 << 2,       /* its update is a gradient estimate one can read out */
};
unsigned esm_es_capabilities(const char *strategy);

/* Fills cfg with the defaults of `strategy` for `dim` (see each strategy's file for the
 * formulas and their sources). Unknown name -> ESM_ENOTFOUND listing the valid ones. */
esm_status esm_es_config_init(esm_es_config *cfg, const char *strategy, size_t dim, esm_err *err);

/* Validates cfg and allocates O(dim) state. x0 (dim floats) is the initial centre; NULL
 * means zeros. cfg is copied; cfg->strategy need not outlive the call. */
esm_status esm_es_create(esm_es **out, const esm_es_config *cfg, const float *x0, esm_err *err);
void esm_es_free(esm_es *es);

const char *esm_es_name(const esm_es *es);
size_t esm_es_dim(const esm_es *es);
int esm_es_popsize(const esm_es *es);
uint64_t esm_es_seed(const esm_es *es);
uint32_t esm_es_generation(const esm_es *es);     /* tells completed so far */
const float *esm_es_mean(const esm_es *es);       /* the current centre, dim floats */
const esm_es_config *esm_es_get_config(const esm_es *es);
/* Learning-rate schedules: the centre optimiser's optim.lr from the next tell on (ClipUp's
 * max_speed scales with it, keeping their ratio). The rate is not part of the saved state,
 * so whoever schedules it sets it again after a load. Strategies without a centre optimiser
 * (snes, sep-cma) keep the value and ignore it. lr must be positive and finite. */
esm_status esm_es_set_lr(esm_es *es, float lr, esm_err *err);
/* Sigma schedules, for openai-es (the strategy whose sigma is fixed; the others adapt their
 * own and answer ESM_EUNSUPPORTED): the members asked for from now on, and the next tell, use
 * sigma. Like the rate, it is not saved: a scheduler sets it again after a load. */
esm_status esm_es_set_sigma(esm_es *es, float sigma, esm_err *err);

/* Everything needed to rebuild any member of one generation without the ES object, for
 * population evaluators (a thread pool, a GPU, another process): member i's coordinate j is
 * mean[j] + scale[j] * z[j], z = esm_es_noise_range(seed, gen, i, antithetic, ...). */
typedef struct {
    const float *mean;  /* [dim] the centre */
    const float *scale; /* [dim] per-coordinate search std-dev */
    size_t dim;
    int popsize;
    uint64_t seed;
    uint32_t gen;
    int antithetic;     /* members 2k and 2k+1 share pair k's noise with opposite signs */
} esm_es_population;
/* The current generation's description; scale_buf (dim floats) receives the scales and must
 * live as long as the description is used, as must es (mean points into it). */
void esm_es_population_get(const esm_es *es, float *scale_buf, esm_es_population *pop);
/* Coordinates [begin, begin + n) of member i of pop into out (the one place members are built). */
void esm_es_population_member(const esm_es_population *pop, int i, size_t begin, size_t n, float *out);

/* Candidate parameters of member i (0 <= i < popsize) of the current generation. */
void esm_es_member(const esm_es *es, int i, float *theta_out);
/* The coordinates [begin, begin + n) of that candidate, for chunked or sharded use. */
void esm_es_member_range(const esm_es *es, int i, size_t begin, size_t n, float *out);
/* Per-coordinate search std-dev for [begin, begin + n): member = mean + scale * noise. */
void esm_es_scale_range(const esm_es *es, size_t begin, size_t n, float *out);

/* The standard-normal noise of member i in generation `gen`, coordinates [begin, begin+n):
 * a pure function of its arguments (antithetic: member 2k+1 is minus member 2k). */
void esm_es_noise_range(uint64_t seed, uint32_t gen, int member, int antithetic, size_t begin,
                        size_t n, float *out);

/* Consumes one fitness per member (maximised) and advances one generation. Non-finite
 * values rank last and are counted in rep; if every value is non-finite the state is left
 * unchanged and ESM_ENONFINITE is returned. rep may be NULL. */
esm_status esm_es_tell(esm_es *es, const float *fitness, esm_es_report *rep, esm_err *err);

/* ---- The sharded update: one tell() split across the processes of a job ----
 *
 * What grows with the population in an update is the noise: every member's, over every
 * coordinate, O(P * dim) work. A sharded tell splits that part alone: process r of n takes a
 * contiguous range of coordinates (esm_es_shard_range), regenerates all P members' noise there
 * and sums it with the members' weights, and the processes gather the sums (8 bytes a coordinate
 * for each sum the strategy uses: openai-es one, pgpe/snes/sep-cma two). Every process then
 * performs the rest of the update, O(dim), on the whole vectors: its state, optimiser included,
 * stays whole and equal on every process, and every reduction over coordinates is summed as one
 * process sums it. Each sum is over members only, so its bits do not depend on where the shards
 * end: the result has the same bits for any number of processes and threads.
 *
 * The library never talks to other processes itself: the caller lends it an allgather. */
typedef struct {
    int rank, size; /* this process and how many take part (1 = alone) */
    /* Collective, called by every process in the same order: buf holds size consecutive blocks,
     * block r being counts[r] elements of elem_size (4 or 8) bytes; on entry this process's block
     * is filled, on return every block is. */
    esm_status (*allgather)(void *ctx, void *buf, size_t elem_size, const int *counts, esm_err *err);
    void *ctx;
} esm_es_comm;

/* Process `rank` of `size`'s coordinates [*begin, *end): the first dim % size processes get one more. */
void esm_es_shard_range(size_t dim, int rank, int size, size_t *begin, size_t *end);
/* tell() with the noise sums split over comm's processes (comm NULL or size 1: esm_es_tell).
 * Collective; every process passes the same fitness and ends with the same state. */
esm_status esm_es_tell_sharded(esm_es *es, const float *fitness, const esm_es_comm *comm, esm_es_report *rep,
                               esm_err *err);

/* Checkpoints: the exact byte size of a saved state (O(dim): it is the whole state), the
 * save, and a load into an object created with the same strategy, dim and popsize. A
 * loaded object continues bit-identically. Little-endian (the build requires a little-endian host). */
size_t esm_es_state_size(const esm_es *es);
esm_status esm_es_save(const esm_es *es, void *buf, size_t cap, esm_err *err);
esm_status esm_es_load(esm_es *es, const void *buf, size_t len, esm_err *err);

#ifdef __cplusplus
}
#endif
#endif
