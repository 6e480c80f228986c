/* One query's cross-entropy over its distance logits, in two steps that the host head
 * (src/meta/protonet_head.c) and the CUDA head (src/popeval/cuda.cu) both call, so the device's numerics
 * are the host's by construction and are tested on any CPU (tests/test_protonet.c).
 *
 * A caller computes each logit -|q - p_c|^2 once, in double, hands it to esm_xent_take in class
 * order (row keeps it rounded to float), then calls esm_xent_finish. Header-only because nvcc
 * compiles it as device code too; no state, no allocation. */
#ifndef ESM_META_XENT_LOGITS_H
#define ESM_META_XENT_LOGITS_H

#include <math.h>

#ifdef __CUDACC__
#define ESM_HD __host__ __device__
#else
#define ESM_HD
#endif

typedef struct {
    double max;   /* the largest logit, exact */
    double label; /* the label's logit, exact */
    int best;     /* the first class holding the largest logit */
} esm_xent_acc;

ESM_HD static inline esm_xent_acc esm_xent_start(void)
{
    esm_xent_acc a = {-INFINITY, 0.0, 0};
    return a;
}

/* Class c's logit l: row[c] keeps it rounded to float (the host reuses row for the softmax). */
ESM_HD static inline void esm_xent_take(esm_xent_acc *a, float *row, int c, double l, int label)
{
    row[c] = (float)l;
    if (l > a->max)
        a->max = l, a->best = c;
    if (c == label)
        a->label = l;
}

/* log-sum-exp of the row. The best class adds exactly exp(0) = 1, not exp of its float-rounded
 * logit minus the exact max: far from the prototypes (logits ~1e8, float spacing ~8) that term
 * is e^+-8, which made the loss negative or huge. So lse >= max always and the loss
 * lse - label is finite and non-negative however large the logits. */
ESM_HD static inline double esm_xent_lse(const esm_xent_acc *a, const float *row, int way)
{
    double z = 1.0;
    for (int c = 0; c < way; c++)
        if (c != a->best)
            z += exp((double)row[c] - a->max);
    return a->max + log(z);
}

#endif
