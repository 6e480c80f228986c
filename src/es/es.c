/* The strategy-independent half of esm_es: configuration, members, the tell() frame
 * (ranking, non-finite handling, report) and checkpoint framing. */
#include "es/member.h"
#include "es/strategy.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC 0x53454d45u /* "EMES" little-endian */
#define STATE_VERSION 1u
#define NAME_BYTES 16
#define HEADER_BYTES (4 + 4 + NAME_BYTES + 8 + 4 + 4 + 8 + 4 + 8)

static esm_status unknown_strategy(const char *name, esm_err *err)
{
    char list[256];
    esm_es_list_names(list, sizeof list);
    return esm_fail(err, ESM_ENOTFOUND, "unknown ES strategy '%s': valid names are %s", name ? name : "(null)", list);
}

esm_status esm_es_config_init(esm_es_config *cfg, const char *strategy, size_t dim, esm_err *err)
{
    const esm_es_strategy *vt = esm_es_find(strategy);
    if (!vt)
        return unknown_strategy(strategy, err);
    memset(cfg, 0, sizeof *cfg);
    cfg->strategy = vt->name;
    cfg->dim = dim;
    vt->defaults(cfg);
    return ESM_OK;
}

static esm_status validate_common(const esm_es_config *c, esm_err *err)
{
    if (c->dim == 0)
        return esm_fail(err, ESM_EINVAL, "dim = 0: the search space needs at least one parameter");
    /* esm_gauss_range counts 4-float blocks in 32 bits. */
    if (c->dim / 4 >= UINT32_MAX)
        return esm_fail(err, ESM_EINVAL, "dim = %zu: at most 4 * (2^32 - 1) parameters", c->dim);
    if (c->popsize < 2)
        return esm_fail(err, ESM_EINVAL, "popsize = %d: need at least 2 members to rank", c->popsize);
    if (c->antithetic != 0 && c->antithetic != 1)
        return esm_fail(err, ESM_EINVAL, "antithetic = %d: use 0 or 1", c->antithetic);
    if (c->antithetic && c->popsize % 2)
        return esm_fail(err, ESM_EINVAL, "popsize = %d is odd but antithetic sampling pairs members: use an even popsize or antithetic = 0", c->popsize);
    if (!(c->sigma0 > 0) || !isfinite(c->sigma0))
        return esm_fail(err, ESM_EINVAL, "sigma0 = %g: the initial step size must be a positive finite number", c->sigma0);
    return ESM_OK;
}

esm_status esm_es_create(esm_es **out, const esm_es_config *cfg, const float *x0, esm_err *err)
{
    assert(out && cfg);
    *out = NULL;
    const esm_es_strategy *vt = esm_es_find(cfg->strategy);
    if (!vt)
        return unknown_strategy(cfg->strategy, err);
    esm_status s = validate_common(cfg, err);
    if (s == ESM_OK && cfg->shaping != ESM_ES_SHAPING_RANKS && !(vt->caps & ESM_ES_CAN_SHAPE))
        s = esm_fail_field(err, ESM_EINVAL, "shaping", "shaping %s: %s weights members by its own ranks; leave "
                           "shaping at ranks", esm_es_shaping_name(cfg->shaping), vt->name);
    if (s == ESM_OK)
        s = vt->validate(cfg, err);
    if (s != ESM_OK)
        return s;
    esm_es *es = calloc(1, sizeof *es);
    if (!es)
        return esm_fail(err, ESM_ENOMEM, "ES object: out of memory");
    es->vt = vt;
    es->cfg = *cfg;
    es->cfg.strategy = vt->name;
    es->mean = calloc(cfg->dim, sizeof *es->mean);
    if (!es->mean) {
        free(es);
        return esm_fail(err, ESM_ENOMEM, "ES centre of dim %zu: out of memory", cfg->dim);
    }
    if (x0)
        memcpy(es->mean, x0, cfg->dim * sizeof *x0);
    s = vt->create(es, err);
    if (s != ESM_OK) {
        free(es->mean);
        free(es);
        return s;
    }
    *out = es;
    return ESM_OK;
}

void esm_es_free(esm_es *es)
{
    if (!es)
        return;
    es->vt->destroy(es);
    free(es->mean);
    free(es);
}

const char *esm_es_name(const esm_es *es) { return es->vt->name; }
size_t esm_es_dim(const esm_es *es) { return es->cfg.dim; }
int esm_es_popsize(const esm_es *es) { return es->cfg.popsize; }
uint64_t esm_es_seed(const esm_es *es) { return es->cfg.seed; }
uint32_t esm_es_generation(const esm_es *es) { return es->gen; }
const float *esm_es_mean(const esm_es *es) { return es->mean; }
const esm_es_config *esm_es_get_config(const esm_es *es) { return &es->cfg; }

esm_status esm_es_set_lr(esm_es *es, float lr, esm_err *err)
{
    if (!(lr > 0) || !isfinite(lr))
        return esm_fail(err, ESM_EINVAL, "learning rate %g: must be a positive finite number", (double)lr);
    es->cfg.optim.max_speed *= lr / es->cfg.optim.lr;
    es->cfg.optim.lr = lr;
    return ESM_OK;
}

esm_status esm_es_set_sigma(esm_es *es, float sigma, esm_err *err)
{
    if (!(es->vt->caps & ESM_ES_CAN_SCHEDULE_SIGMA))
        return esm_fail_field(err, ESM_EUNSUPPORTED, "sigma_halve_every", "%s adapts its own sigma: a sigma schedule is "
                              "for openai-es", es->vt->name);
    if (!(sigma > 0) || !isfinite(sigma))
        return esm_fail(err, ESM_EINVAL, "sigma %g: must be a positive finite number", (double)sigma);
    es->cfg.sigma0 = sigma;
    return ESM_OK;
}

void esm_es_scale_range(const esm_es *es, size_t begin, size_t n, float *out)
{
    assert(begin + n <= es->cfg.dim);
    const float *diag;
    float scalar;
    es->vt->scale(es, &diag, &scalar);
    for (size_t j = 0; j < n; j++)
        out[j] = diag ? scalar * diag[begin + j] : scalar;
}

void esm_es_member_range(const esm_es *es, int i, size_t begin, size_t n, float *out)
{
    assert(i >= 0 && i < es->cfg.popsize && begin + n <= es->cfg.dim);
    const float *diag;
    float scalar;
    es->vt->scale(es, &diag, &scalar);
    esm_es_noise_range(es->cfg.seed, es->gen, i, es->cfg.antithetic, begin, n, out);
    for (size_t j = 0; j < n; j++) {
        float s = diag ? scalar * diag[begin + j] : scalar;
        out[j] = esm_member_coord(es->mean[begin + j], s, out[j]);
    }
}

void esm_es_population_get(const esm_es *es, float *scale_buf, esm_es_population *pop)
{
    esm_es_scale_range(es, 0, es->cfg.dim, scale_buf);
    *pop = (esm_es_population){.mean = es->mean, .scale = scale_buf, .dim = es->cfg.dim, .popsize = es->cfg.popsize,
                               .seed = es->cfg.seed, .gen = es->gen, .antithetic = es->cfg.antithetic};
}

void esm_es_population_member(const esm_es_population *pop, int i, size_t begin, size_t n, float *out)
{
    assert(i >= 0 && i < pop->popsize && begin + n <= pop->dim);
    esm_es_noise_range(pop->seed, pop->gen, i, pop->antithetic, begin, n, out);
    for (size_t j = 0; j < n; j++)
        out[j] = esm_member_coord(pop->mean[begin + j], pop->scale[begin + j], out[j]);
}

void esm_es_member(const esm_es *es, int i, float *theta_out)
{
    esm_es_member_range(es, i, 0, es->cfg.dim, theta_out);
}

typedef struct {
    float f;
    int finite, idx;
} rank_item;

static int better_first(const void *pa, const void *pb)
{
    const rank_item *a = pa, *b = pb;
    if (a->finite != b->finite)
        return b->finite - a->finite;
    if (a->finite && a->f != b->f)
        return a->f > b->f ? -1 : 1;
    return a->idx - b->idx; /* ties by index: a total, reproducible order */
}

static void rank_members(const float *fitness, int p, int *order, int *rank, rank_item *items)
{
    for (int i = 0; i < p; i++)
        items[i] = (rank_item){fitness[i], isfinite(fitness[i]) != 0, i};
    qsort(items, (size_t)p, sizeof *items, better_first);
    for (int r = 0; r < p; r++) {
        order[r] = items[r].idx;
        rank[items[r].idx] = r;
    }
}

esm_status esm_es_ranked(const float *fitness, int p, size_t dim, const esm_es_comm *comm, esm_es_ranked_fn fn,
                         void *ctx, esm_err *err)
{
    int *order = malloc(2 * (size_t)p * sizeof *order);
    rank_item *items = malloc((size_t)p * sizeof *items);
    if (!order || !items) {
        free(order);
        free(items);
        return esm_fail(err, ESM_ENOMEM, "ranking %d members: out of memory", p);
    }
    rank_members(fitness, p, order, order + p, items);
    free(items);
    esm_es_ranking rk = {p, fitness, order, order + p};
    esm_es_shard sh;
    esm_status s = esm_es_shard_open(&sh, dim, comm, err);
    if (s == ESM_OK)
        s = fn(ctx, &rk, &sh, err);
    esm_es_shard_close(&sh);
    free(order);
    return s;
}

typedef struct {
    esm_es *es;
    esm_es_report *rep;
} tell_ctx;

static esm_status tell_ranked(void *ctx, const esm_es_ranking *rk, const esm_es_shard *sh, esm_err *err)
{
    tell_ctx *t = ctx;
    return t->es->vt->tell(t->es, rk, sh, t->rep, err);
}

esm_status esm_es_tell(esm_es *es, const float *fitness, esm_es_report *rep, esm_err *err)
{
    return esm_es_tell_sharded(es, fitness, NULL, rep, err);
}

esm_status esm_es_tell_sharded(esm_es *es, const float *fitness, const esm_es_comm *comm, esm_es_report *rep,
                               esm_err *err)
{
    assert(es && fitness);
    int p = es->cfg.popsize;
    esm_es_report r = {0};
    double sum = 0, max = -INFINITY;
    for (int i = 0; i < p; i++) {
        if (!isfinite(fitness[i])) {
            r.n_nonfinite++;
            continue;
        }
        sum += fitness[i];
        max = fitness[i] > max ? fitness[i] : max;
    }
    if (r.n_nonfinite == p)
        return esm_fail(err, ESM_ENONFINITE, "all %d fitness values of generation %u are NaN or infinite: state left unchanged; check the objective", p, es->gen);
    r.fitness_mean = sum / (p - r.n_nonfinite);
    r.fitness_max = max;
    esm_status s = esm_es_ranked(fitness, p, es->cfg.dim, comm, tell_ranked, &(tell_ctx){es, &r}, err);
    if (s != ESM_OK)
        return s;
    es->gen++;
    if (rep)
        *rep = r;
    return ESM_OK;
}

size_t esm_es_state_size(const esm_es *es)
{
    return HEADER_BYTES + es->cfg.dim * sizeof(float) + es->vt->state_size(es) + 4;
}

esm_status esm_es_save(const esm_es *es, void *buf, size_t cap, esm_err *err)
{
    size_t need = esm_es_state_size(es);
    if (cap < need)
        return esm_fail(err, ESM_EINVAL, "state buffer of %zu bytes is too small: esm_es_state_size says %zu", cap, need);
    esm_writer w = {.buf = buf, .cap = need};
    char name[NAME_BYTES] = {0};
    strncpy(name, es->vt->name, NAME_BYTES - 1);
    esm_write_u32(&w, STATE_MAGIC);
    esm_write_u32(&w, STATE_VERSION);
    esm_write_bytes(&w, name, NAME_BYTES);
    esm_write_u64(&w, es->cfg.dim);
    esm_write_u32(&w, (uint32_t)es->cfg.popsize);
    esm_write_u32(&w, (uint32_t)es->cfg.antithetic);
    esm_write_u64(&w, es->cfg.seed);
    esm_write_u32(&w, es->gen);
    esm_write_u64(&w, es->vt->state_size(es));
    esm_write_floats(&w, es->mean, es->cfg.dim);
    es->vt->save(es, &w);
    esm_write_u32(&w, esm_crc32(0, buf, w.len));
    assert(w.len == need);
    return ESM_OK;
}

/* Every check happens before anything is written, so a failed load leaves es intact. */
esm_status esm_es_load(esm_es *es, const void *buf, size_t len, esm_err *err)
{
    if (len < HEADER_BYTES + 4)
        return esm_fail(err, ESM_EFORMAT, "ES state of %zu bytes is truncated: a header alone is %d", len, HEADER_BYTES + 4);
    esm_reader r = {.buf = buf, .len = len, .ok = 1};
    char name[NAME_BYTES];
    uint32_t magic = esm_get_u32(&r), version = esm_get_u32(&r);
    if (magic != STATE_MAGIC)
        return esm_fail(err, ESM_EFORMAT, "not an ES state (bad magic %08x): pass a buffer written by esm_es_save", magic);
    if (version != STATE_VERSION)
        return esm_fail(err, ESM_EVERSION, "ES state version %u: this build reads version %u", version, STATE_VERSION);
    esm_get_bytes(&r, name, NAME_BYTES);
    name[NAME_BYTES - 1] = 0;
    uint64_t dim = esm_get_u64(&r);
    uint32_t pop = esm_get_u32(&r), anti = esm_get_u32(&r);
    uint64_t seed = esm_get_u64(&r);
    uint32_t gen = esm_get_u32(&r);
    uint64_t payload = esm_get_u64(&r);
    if (strcmp(name, es->vt->name))
        return esm_fail(err, ESM_EMISMATCH, "ES state is from strategy '%s' but this object runs '%s': create a '%s' object to load it", name, es->vt->name, name);
    if (dim != es->cfg.dim)
        return esm_fail(err, ESM_EMISMATCH, "ES state has dim %llu but this object has dim %zu: create it with the checkpoint's dim", (unsigned long long)dim, es->cfg.dim);
    if (pop != (uint32_t)es->cfg.popsize || anti != (uint32_t)es->cfg.antithetic)
        return esm_fail(err, ESM_EMISMATCH, "ES state has popsize %u (antithetic %u) but this object has %d (%d): use the checkpoint's", pop, anti, es->cfg.popsize, es->cfg.antithetic);
    if (payload != es->vt->state_size(es) || len != esm_es_state_size(es))
        return esm_fail(err, ESM_EFORMAT, "ES state is %zu bytes, expected %zu for this configuration (optimiser kind differs, or truncated)", len, esm_es_state_size(es));
    uint32_t crc;
    memcpy(&crc, (const uint8_t *)buf + len - 4, 4);
    if (crc != esm_crc32(0, buf, len - 4))
        return esm_fail(err, ESM_ECHECKSUM, "ES state checksum mismatch: the checkpoint is corrupt");
    es->cfg.seed = seed;
    es->gen = gen;
    esm_get_floats(&r, es->mean, es->cfg.dim);
    es->vt->load(es, &r);
    return ESM_OK;
}
