/* esmeta optim: Adam (Kingma & Ba 2015) with PyTorch's semantics, on flat vectors. */
#ifndef ESMETA_OPTIM_H
#define ESMETA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float lr;
    float beta1, beta2; /* 0.9, 0.999 */
    float eps;          /* 1e-8, added to sqrt(v_hat) */
    float weight_decay; /* L2 added to the gradient (torch.optim.Adam's weight_decay); 0 = off */
} esm_adam_config;

esm_adam_config esm_adam_config_default(float lr);

/* The optimizer state is one flat vector of esm_adam_state_floats(n) floats (first moments
 * then second moments) plus the step count: what a checkpoint saves. */
typedef struct {
    esm_adam_config cfg;
    size_t n;      /* parameters */
    int64_t step;  /* steps taken */
    float *state;  /* [2n]: m (n) then v (n) */
} esm_adam;

size_t esm_adam_state_floats(size_t n_params);

/* Allocates zeroed state for n parameters; fails on an invalid config (lr <= 0, betas
 * outside [0, 1), eps <= 0, negative weight decay). */
esm_status esm_adam_init(esm_adam *opt, size_t n_params, const esm_adam_config *cfg, esm_err *err);
void esm_adam_free(esm_adam *opt);

/* One step: params -= lr * m_hat / (sqrt(v_hat) + eps), as torch.optim.Adam does. */
void esm_adam_step(esm_adam *opt, float *params, const float *grad);

#ifdef __cplusplus
}
#endif
#endif
