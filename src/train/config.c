/* Training configuration: defaults, names, and the text form stored in checkpoints. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esmeta/es.h"
#include "esmeta/train.h"
#include "train/trainer_internal.h"

esm_train_config esm_train_config_default(esm_trainer_kind kind)
{
    esm_train_config c;
    memset(&c, 0, sizeof c);
    c.trainer = kind;
    snprintf(c.split, sizeof c.split, "trainval");
    c.shape = (esm_episode_shape){60, 5, 5};
    c.steps = 10000;
    c.seed = 1;
    c.net = esm_net_config_default();
    c.lr = 1e-3f;
    c.lr_halve_every = 2000;
    c.episodes_per_step = 1;
    snprintf(c.device, sizeof c.device, "cpu");
    c.es_rules = 1;
    if (kind == ESM_TRAINER_ES) {
        /* A starting point from a small numpy OpenAI-ES study (issue 4): 5-way 5-shot 5-query
         * episodes, population 32, sigma 0.02, Adam 0.002. */
        c.shape = (esm_episode_shape){5, 5, 5};
        c.steps = 1000;
        c.lr = 2e-3f;
        c.lr_halve_every = 0;
        snprintf(c.strategy, sizeof c.strategy, "openai-es");
        c.pop = 32;
        c.sigma = 0.02f;
        c.episodes_per_gen = 1;
        c.centre_every = 10;
    }
    return c;
}

static const char *const KIND_NAMES[] = {"backprop", "es"};

int esm_trainer_kind_parse(const char *name)
{
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, KIND_NAMES[i]))
            return i;
    return -1;
}

const char *esm_trainer_kind_name(esm_trainer_kind kind)
{
    return (unsigned)kind < 2 ? KIND_NAMES[kind] : "unknown";
}

/* Floats are written with %a (exact hexadecimal) so that a resumed run sees the same bits. */
int esm_config_to_text(const esm_train_config *c, char *buf, size_t cap)
{
    return snprintf(buf, cap,
                    "trainer=%s\nsplit=%s\nsplit_hash=%" PRIu64 "\nway=%d\nshot=%d\nquery=%d\nsteps=%" PRId64
                    "\nseed=%" PRIu64 "\nin_channels=%d\nin_height=%d\nin_width=%d\nwidth=%d\ndepth=%d\nlr=%a\n"
                    "lr_halve_every=%" PRId64 "\nweight_decay=%a\nstrategy=%s\npop=%d\nsigma=%a\n"
                    "episodes_per_gen=%d\ncentre_every=%d\nepisodes_per_step=%d\ndevice=%s\nstream_chunk=%d\nes_rules=%d\n"
                    "shaping=%s\nsigma_halve_every=%" PRId64 "\n",
                    esm_trainer_kind_name(c->trainer), c->split, c->split_hash, c->shape.way, c->shape.shot,
                    c->shape.query, c->steps, c->seed, c->net.in_channels, c->net.in_height, c->net.in_width,
                    c->net.width, c->net.depth, (double)c->lr, c->lr_halve_every, (double)c->weight_decay,
                    c->strategy, c->pop, (double)c->sigma, c->episodes_per_gen, c->centre_every, c->episodes_per_step,
                    c->device[0] ? c->device : "cpu", c->stream_chunk, c->es_rules,
                    esm_es_shaping_name(c->shaping), c->sigma_halve_every);
}

static int set_field(esm_train_config *c, const char *key, const char *v)
{
    char *end = NULL;
#define INT_FIELD(name, dst)                   \
    if (!strcmp(key, name)) {                  \
        dst = strtoll(v, &end, 10);            \
        return *end == 0;                      \
    }
    if (!strcmp(key, "trainer")) {
        int k = esm_trainer_kind_parse(v);
        c->trainer = (esm_trainer_kind)k;
        return k >= 0;
    }
    if (!strcmp(key, "split"))
        return snprintf(c->split, sizeof c->split, "%s", v) < (int)sizeof c->split;
    if (!strcmp(key, "split_hash") || !strcmp(key, "seed")) {
        uint64_t x = strtoull(v, &end, 10);
        *(!strcmp(key, "seed") ? &c->seed : &c->split_hash) = x;
        return *end == 0;
    }
    if (!strcmp(key, "strategy"))
        return snprintf(c->strategy, sizeof c->strategy, "%s", v) < (int)sizeof c->strategy;
    if (!strcmp(key, "shaping"))
        return (c->shaping = esm_es_shaping_parse(v)) >= 0;
    if (!strcmp(key, "device"))
        return snprintf(c->device, sizeof c->device, "%s", v) < (int)sizeof c->device;
    if (!strcmp(key, "lr") || !strcmp(key, "weight_decay") || !strcmp(key, "sigma")) {
        float x = strtof(v, &end);
        *(!strcmp(key, "lr") ? &c->lr : !strcmp(key, "sigma") ? &c->sigma : &c->weight_decay) = x;
        return *end == 0;
    }
    INT_FIELD("way", c->shape.way)
    INT_FIELD("shot", c->shape.shot)
    INT_FIELD("query", c->shape.query)
    INT_FIELD("steps", c->steps)
    INT_FIELD("in_channels", c->net.in_channels)
    INT_FIELD("in_height", c->net.in_height)
    INT_FIELD("in_width", c->net.in_width)
    INT_FIELD("width", c->net.width)
    INT_FIELD("depth", c->net.depth)
    INT_FIELD("lr_halve_every", c->lr_halve_every)
    INT_FIELD("sigma_halve_every", c->sigma_halve_every) /* absent before 2026-12-02: 0, fixed */
    INT_FIELD("pop", c->pop)
    INT_FIELD("episodes_per_gen", c->episodes_per_gen)
    INT_FIELD("centre_every", c->centre_every)
    INT_FIELD("episodes_per_step", c->episodes_per_step)
    INT_FIELD("stream_chunk", c->stream_chunk) /* absent before streaming: 0, whole episodes */
    INT_FIELD("es_rules", c->es_rules)         /* absent before 2026-12-02: 0, the old rules */
#undef INT_FIELD
    return 1; /* keys from newer versions are ignored */
}

esm_status esm_config_from_text(const char *text, size_t len, esm_train_config *c, const char *origin, esm_err *err)
{
    memset(c, 0, sizeof *c);
    c->episodes_per_step = 1; /* checkpoints from before the key existed: one episode a step */
    /* Checkpoints from before the device field scored members on the CPU. */
    snprintf(c->device, sizeof c->device, "cpu");
    char line[512];
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        size_t n = j - i < sizeof line - 1 ? j - i : sizeof line - 1;
        memcpy(line, text + i, n);
        line[n] = 0;
        i = j + 1;
        char *eq = strchr(line, '=');
        if (!n)
            continue;
        if (!eq)
            return esm_fail(err, ESM_EFORMAT, "%s: malformed configuration line '%s'", origin, line);
        *eq = 0;
        if (!set_field(c, line, eq + 1))
            return esm_fail(err, ESM_EFORMAT, "%s: bad configuration value %s=%s", origin, line, eq + 1);
    }
    return ESM_OK;
}
