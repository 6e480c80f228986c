/* The ES-ProtoNet trainer on the real Omniglot data, with tiny nets so that it stays fast. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "es_helpers.h"
#include "esmeta.h"
#include "harness.h"

/* A tiny ES run: 5-way 1-shot 2-query episodes, small net, small population. */
static esm_train_config tiny_cfg(int width, int depth, int pop)
{
    esm_train_config c = esm_train_config_default(ESM_TRAINER_ES);
    c.net.width = width;
    c.net.depth = depth;
    c.shape = (esm_episode_shape){5, 1, 2};
    c.pop = pop;
    c.steps = 100;
    c.seed = 7;
    c.episodes_per_gen = 1;
    c.centre_every = 1;
    return c;
}

typedef struct {
    esm_dataset *ds;
    esm_split sp;
} fixture;

static int fixture_open(fixture *f, esm_err *err)
{
    memset(f, 0, sizeof *f);
    f->ds = esm_test_dataset();
    return f->ds && esm_split_get(f->ds, "trainval", &f->sp, err) == ESM_OK;
}

static void fixture_close(fixture *f)
{
    esm_split_free(&f->sp);
    esm_dataset_free(f->ds);
}

/* The whole file in a fresh buffer (NULL on failure). */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static int same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x), free(y);
    return same;
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", esm_test_tmpdir(), name);
}

/* Runs `gens` generations of a fresh or existing trainer; returns the first failure. */
static esm_status run_gens(esm_trainer *t, int gens, esm_train_stats *last, esm_err *err)
{
    esm_status st = ESM_OK;
    for (int g = 0; g < gens && st == ESM_OK; g++)
        st = esm_trainer_step(t, last, err);
    return st;
}

/* Creates a trainer, runs gens generations and saves it to path. */
static esm_status run_and_save(const fixture *f, const esm_train_config *c, int gens, const char *path, esm_err *err)
{
    esm_trainer *t = NULL;
    esm_status st = esm_trainer_create(c, f->ds, &f->sp, &t, err);
    if (st == ESM_OK)
        st = run_gens(t, gens, NULL, err);
    if (st == ESM_OK)
        st = esm_trainer_save(t, path, err);
    esm_trainer_free(t);
    return st;
}

TEST(es_trainer_thread_count_changes_nothing)
{
    esm_err err = {0};
    fixture f;
    REQUIRE_OK(fixture_open(&f, &err) ? ESM_OK : ESM_EIO, &err);
    /* Two episodes a generation and the centre measured every generation: every path runs. */
    esm_train_config c = tiny_cfg(8, 2, 8);
    c.episodes_per_gen = 2;
    char one[4096], two[4096];
    tmp_path(one, sizeof one, "threads1.ckpt");
    tmp_path(two, sizeof two, "threads2.ckpt");
    omp_set_num_threads(1);
    REQUIRE_OK(run_and_save(&f, &c, 3, one, &err), &err);
    omp_set_num_threads(2);
    REQUIRE_OK(run_and_save(&f, &c, 3, two, &err), &err);
    CHECK(same_file(one, two));
    fixture_close(&f);
}

TEST(es_trainer_resume_is_bit_identical)
{
    esm_err err = {0};
    fixture f;
    REQUIRE_OK(fixture_open(&f, &err) ? ESM_OK : ESM_EIO, &err);
    esm_train_config c = tiny_cfg(8, 2, 8);
    c.centre_every = 3;
    char straight[4096], half[4096], resumed[4096];
    tmp_path(straight, sizeof straight, "straight.ckpt");
    tmp_path(half, sizeof half, "half.ckpt");
    tmp_path(resumed, sizeof resumed, "resumed.ckpt");
    REQUIRE_OK(run_and_save(&f, &c, 4, straight, &err), &err);
    REQUIRE_OK(run_and_save(&f, &c, 2, half, &err), &err);
    esm_trainer *t = NULL;
    REQUIRE_OK(esm_trainer_resume(half, f.ds, &f.sp, &t, &err), &err);
    CHECK(esm_trainer_steps_done(t) == 2);
    esm_train_stats s;
    REQUIRE_OK(run_gens(t, 2, &s, &err), &err);
    CHECK(s.step == 4 && s.has_centre == 0);
    REQUIRE_OK(esm_trainer_save(t, resumed, &err), &err);
    esm_trainer_free(t);
    CHECK(same_file(straight, resumed));
    fixture_close(&f);
}
