/* A generation's gradient estimates without its step, for diagnostics: how well an ES estimate
 * points along the true gradient (bench/bench_es_cosine.c sets them beside backprop gradients).
 * Both estimate the gradient of the expected FITNESS at the centre (negate them for a loss) from
 * the fitness of every member of es's current generation, as esm_es_member builds them; es is
 * not changed. */
#ifndef ESM_ES_ESTIMATE_H
#define ESM_ES_ESTIMATE_H

#include <stddef.h>

#include "esmeta/es.h"

/* What the strategy's own tell steps along before weight decay: openai-es's (1 / (P sigma))
 * sum_i w_i e_i with the weights of its configured shaping (the very code its tell runs). ESM_EUNSUPPORTED for
 * other strategies; ESM_ENONFINITE when no fitness is finite. g has dim floats. */
esm_status esm_es_gradient_estimate(const esm_es *es, const float *fitness, float *g, esm_err *err);

/* The plain antithetic (central-difference) estimator, unshaped:
 *   g = (1 / K) sum_k (f(x + s e_k) - f(x - s e_k)) / (2 s) e_k,   K = P / 2 pairs,
 * s the per-coordinate search scale. It is unbiased for the gradient of the Gaussian-smoothed
 * fitness, and exact in expectation on a quadratic. Needs antithetic sampling (ESM_EINVAL
 * otherwise) and finite fitness throughout (ESM_ENONFINITE otherwise). */
esm_status esm_es_antithetic_gradient(const esm_es *es, const float *fitness, float *g, esm_err *err);

/* a.b / (|a| |b|) in double; 0 when either vector is zero. */
double esm_cosine(const float *a, const float *b, size_t n);
/* |a| in double. */
double esm_norm(const float *a, size_t n);

#endif
