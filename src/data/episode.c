/* Seeded N-way K-shot Q-query episodes. Episode (seed, index) is drawn from its own Philox
 * stream, so episodes need no shared sampler state and any worker can rebuild any of them. */
#include <stdlib.h>
#include <string.h>

#include "esmeta/data.h"

/* Stream tag: keeps episode randomness apart from other users of the same seed. */
#define EPISODE_STREAM 0x45504953u /* "EPIS" */

static esm_status check_positive(esm_episode_shape s, esm_err *err)
{
    if (s.way > 0 && s.shot > 0 && s.query > 0)
        return ESM_OK;
    const char *field = s.way <= 0 ? "shape.way" : s.shot <= 0 ? "shape.shot" : "shape.query";
    return esm_fail_field(err, ESM_EINVAL, field,
                          "shape.way %d, shape.shot %d, shape.query %d: each must be at least 1", s.way, s.shot,
                          s.query);
}

esm_status esm_episode_check(const esm_split *sp, esm_episode_shape s, esm_err *err)
{
    if (check_positive(s, err) != ESM_OK)
        return ESM_EINVAL;
    if (s.way > sp->n_classes)
        return esm_fail_field(err, ESM_EINVAL, "shape.way", "shape.way %d is more than the %d classes there are; use a "
                              "smaller shape.way", s.way, sp->n_classes);
    if ((long)s.shot + s.query > sp->min_images)
        return esm_fail_field(err, ESM_EINVAL, s.shot > s.query ? "shape.shot" : "shape.query",
                              "shape.shot %d + shape.query %d = %ld images per class, but some classes have only %d; "
                              "use fewer shots or queries", s.shot, s.query, (long)s.shot + s.query, sp->min_images);
    return ESM_OK;
}

esm_status esm_episode_init(esm_episode *ep, const esm_dataset *ds, esm_episode_shape s, esm_err *err)
{
    memset(ep, 0, sizeof *ep);
    if (check_positive(s, err) != ESM_OK)
        return ESM_EINVAL;
    ep->shape = s;
    ep->image_size = ds->channels * ds->height * ds->width;
    size_t ns = (size_t)s.way * s.shot, nq = (size_t)s.way * s.query;
    ep->classes = malloc(sizeof(int) * (size_t)s.way);
    ep->support_img = malloc(sizeof(int) * ns);
    ep->query_img = malloc(sizeof(int) * nq);
    ep->query_label = malloc(sizeof(int) * nq);
    ep->scratch = malloc(sizeof(int) * (size_t)(s.shot + s.query));
    ep->support = malloc(sizeof(float) * ns * (size_t)ep->image_size);
    ep->query = malloc(sizeof(float) * nq * (size_t)ep->image_size);
    if (!ep->classes || !ep->support_img || !ep->query_img || !ep->query_label || !ep->scratch || !ep->support || !ep->query) {
        esm_episode_free(ep);
        return esm_fail(err, ESM_ENOMEM, "out of memory for a %d-way %d-shot %d-query episode", s.way, s.shot, s.query);
    }
    return ESM_OK;
}

void esm_episode_free(esm_episode *ep)
{
    free(ep->classes);
    free(ep->support_img);
    free(ep->query_img);
    free(ep->query_label);
    free(ep->scratch);
    free(ep->support);
    free(ep->query);
    memset(ep, 0, sizeof *ep);
}

/* k distinct values from [0, n) in uniformly random order: Floyd's subset sampling, then a
 * Fisher-Yates shuffle. O(k^2) time and no O(n) scratch, which suits k << n. */
static void sample_distinct(esm_stream *s, int n, int k, int *out)
{
    for (int j = n - k, m = 0; j < n; j++, m++) {
        int t = (int)esm_stream_below(s, (uint32_t)j + 1), dup = 0;
        for (int i = 0; i < m && !dup; i++)
            dup = out[i] == t;
        out[m] = dup ? j : t;
    }
    for (int i = k - 1; i > 0; i--) {
        int j = (int)esm_stream_below(s, (uint32_t)i + 1), tmp = out[i];
        out[i] = out[j], out[j] = tmp;
    }
}

void esm_episode_sample_indices(esm_episode *ep, const esm_split *sp, uint64_t seed, uint64_t index)
{
    esm_episode_shape s = ep->shape;
    esm_stream st = esm_stream_make(seed, (uint32_t)index, (uint32_t)(index >> 32), EPISODE_STREAM);
    sample_distinct(&st, sp->n_classes, s.way, ep->classes);
    int per = s.shot + s.query, *pick = ep->scratch;
    for (int c = 0; c < s.way; c++) {
        sample_distinct(&st, sp->classes[ep->classes[c]].n_images, per, pick);
        memcpy(ep->support_img + c * s.shot, pick, sizeof(int) * (size_t)s.shot);
        memcpy(ep->query_img + c * s.query, pick + s.shot, sizeof(int) * (size_t)s.query);
        for (int q = 0; q < s.query; q++)
            ep->query_label[c * s.query + q] = c;
    }
}

void esm_episode_sample(esm_episode *ep, const esm_dataset *ds, const esm_split *sp, uint64_t seed, uint64_t index)
{
    esm_episode_sample_indices(ep, sp, seed, index);
    esm_episode_shape s = ep->shape;
    size_t img = (size_t)ep->image_size;
    for (int c = 0; c < s.way; c++) {
        esm_class k = sp->classes[ep->classes[c]];
        for (int i = 0; i < s.shot; i++)
            esm_image_to_float(ds, k.chr, ep->support_img[c * s.shot + i], k.rot, ep->support + (c * s.shot + i) * img);
        for (int i = 0; i < s.query; i++)
            esm_image_to_float(ds, k.chr, ep->query_img[c * s.query + i], k.rot, ep->query + (c * s.query + i) * img);
    }
}
