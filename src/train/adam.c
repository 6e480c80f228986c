/* Adam with torch.optim.Adam's update order (bias corrections folded as PyTorch folds them,
 * so results match it to float rounding). */
#include "esmeta/optim.h"

#include <math.h>
#include <stdlib.h>

esm_adam_config esm_adam_config_default(float lr)
{
    esm_adam_config c = {.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
    return c;
}

size_t esm_adam_state_floats(size_t n_params)
{
    return 2 * n_params;
}

esm_status esm_adam_init(esm_adam *opt, size_t n_params, const esm_adam_config *cfg, esm_err *err)
{
    *opt = (esm_adam){0};
    if (!(cfg->lr > 0.0f) || !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) || !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f) ||
        !(cfg->eps > 0.0f) || !(cfg->weight_decay >= 0.0f))
        return esm_fail(err, ESM_EINVAL,
                        "adam: lr %g, betas (%g, %g), eps %g, weight decay %g: need lr > 0, betas in [0, 1), "
                        "eps > 0, decay >= 0",
                        cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay);
    float *state = calloc(esm_adam_state_floats(n_params) ? esm_adam_state_floats(n_params) : 1, sizeof *state);
    if (!state)
        return esm_fail(err, ESM_ENOMEM, "adam: cannot allocate state for %zu parameters", n_params);
    *opt = (esm_adam){.cfg = *cfg, .n = n_params, .step = 0, .state = state};
    return ESM_OK;
}

void esm_adam_free(esm_adam *opt)
{
    free(opt->state);
    *opt = (esm_adam){0};
}

void esm_adam_step(esm_adam *opt, float *params, const float *grad)
{
    const esm_adam_config *c = &opt->cfg;
    opt->step++;
    double bc1 = 1.0 - pow(c->beta1, (double)opt->step);
    double bc2 = 1.0 - pow(c->beta2, (double)opt->step);
    float step_size = (float)(c->lr / bc1);
    float sqrt_bc2 = (float)sqrt(bc2);
    float b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay, eps = c->eps;
    float *m = opt->state, *v = opt->state + opt->n;
    for (size_t i = 0; i < opt->n; i++) {
        float g = grad[i] + wd * params[i];
        m[i] += (1.0f - b1) * (g - m[i]); /* PyTorch's lerp form */
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) / sqrt_bc2 + eps;
        params[i] -= step_size * m[i] / denom;
    }
}
