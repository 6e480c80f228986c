/* The prototypical-network head: prototypes, distance logits, cross-entropy and its gradient. */
#include "esmeta/protonet.h"
#include "meta/head.h"
#include "meta/xent_logits.h"

#include <math.h>
#include <string.h>

size_t esm_protonet_head_scratch(int way, int n_query, int dim)
{
    /* prototypes and their gradient (way, dim), probabilities (n_query, way) */
    return 2 * (size_t)way * dim + (size_t)n_query * way;
}

static void prototypes(const float *emb_s, int way, int shot, int dim, float *proto)
{
    for (int c = 0; c < way; c++) {
        float *p = proto + (size_t)c * dim;
        memset(p, 0, (size_t)dim * sizeof *p);
        for (int s = 0; s < shot; s++) {
            const float *e = emb_s + ((size_t)c * shot + s) * dim;
            for (int d = 0; d < dim; d++)
                p[d] += e[d];
        }
        for (int d = 0; d < dim; d++)
            p[d] /= (float)shot;
    }
}

static double sqdist(const float *a, const float *b, int dim)
{
    double s = 0.0;
    for (int d = 0; d < dim; d++) {
        double t = (double)a[d] - b[d];
        s += t * t;
    }
    return s;
}

/* Row q of prob gets softmax(-dist(q, .)); returns -log p(label) and sets *hit when the label
 * is the first-largest logit. */
double esm_protonet_query_xent(const float *q, const float *proto, int way, int dim, int label, float *prob,
                               int *hit)
{
    esm_xent_acc a = esm_xent_start();
    for (int c = 0; c < way; c++)
        esm_xent_take(&a, prob, c, -sqdist(q, proto + (size_t)c * dim, dim), label);
    double lse = esm_xent_lse(&a, prob, way);
    for (int c = 0; c < way; c++)
        prob[c] = (float)exp((c == a.best ? a.max : prob[c]) - lse);
    *hit = a.best == label;
    return lse - a.label;
}

esm_status esm_protonet_head(const float *emb_s, const float *emb_q, const int *labels, int way, int shot,
                             int n_query, int dim, float *scratch, float *loss, float *acc, float *d_emb_s,
                             float *d_emb_q, esm_err *err)
{
    if (way < 1 || shot < 1 || n_query < 1 || dim < 1)
        return esm_fail(err, ESM_EINVAL, "protonet head: way %d, shot %d, queries %d, dim %d must all be positive",
                        way, shot, n_query, dim);
    for (int q = 0; q < n_query; q++)
        if (labels[q] < 0 || labels[q] >= way)
            return esm_fail(err, ESM_EINVAL, "protonet head: query %d has label %d outside 0..%d", q, labels[q],
                            way - 1);
    float *proto = scratch, *d_proto = proto + (size_t)way * dim, *prob = d_proto + (size_t)way * dim;
    prototypes(emb_s, way, shot, dim, proto);
    double total = 0.0;
    int hits = 0;
    for (int q = 0; q < n_query; q++) {
        int hit;
        total += esm_protonet_query_xent(emb_q + (size_t)q * dim, proto, way, dim, labels[q], prob + (size_t)q * way,
                                         &hit);
        hits += hit;
    }
    if (loss)
        *loss = (float)(total / n_query);
    if (acc)
        *acc = (float)hits / (float)n_query;
    if (!isfinite(total))
        return esm_fail(err, ESM_ENONFINITE, "protonet head: the loss is not finite (embeddings hold NaN or inf?)");
    if (!d_emb_s && !d_emb_q)
        return ESM_OK;
    /* With g = (p - onehot)/n_query as d(logit) and logit = -|q - p_c|^2:
     * d q = -2 sum_c g_c (q - p_c),  d p_c = 2 sum_q g_qc (q - p_c). */
    memset(d_proto, 0, (size_t)way * dim * sizeof *d_proto);
    for (int q = 0; q < n_query; q++) {
        const float *e = emb_q + (size_t)q * dim;
        float *dq = d_emb_q ? d_emb_q + (size_t)q * dim : NULL;
        if (dq)
            memset(dq, 0, (size_t)dim * sizeof *dq);
        for (int c = 0; c < way; c++) {
            float g = (prob[(size_t)q * way + c] - (c == labels[q])) / (float)n_query;
            const float *p = proto + (size_t)c * dim;
            float *dp = d_proto + (size_t)c * dim;
            for (int d = 0; d < dim; d++) {
                float t = 2.0f * g * (e[d] - p[d]);
                if (dq)
                    dq[d] -= t;
                dp[d] += t;
            }
        }
    }
    if (d_emb_s) {
        for (int c = 0; c < way; c++)
            for (int s = 0; s < shot; s++) {
                float *ds = d_emb_s + ((size_t)c * shot + s) * dim;
                for (int d = 0; d < dim; d++)
                    ds[d] = d_proto[(size_t)c * dim + d] / (float)shot;
            }
    }
    return ESM_OK;
}
