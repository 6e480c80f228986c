/* The communicator's serial fallback and the trainer's use of it, without mpirun. */
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"
#include "train/trainer_internal.h"

TEST(dist_serial_fallback_is_one_rank)
{
    /* Not under mpirun: init must not touch MPI and give rank 0 of 1. */
    unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("PMIX_RANK"), unsetenv("PMI_SIZE");
    esm_err err = {0};
    esm_dist *d = NULL;
    REQUIRE_OK(esm_dist_init(&d, &err), &err);
    esm_dist *handles[2] = {d, NULL}; /* NULL behaves the same */
    for (int k = 0; k < 2; k++) {
        esm_dist *h = handles[k];
        CHECK(esm_dist_rank(h) == 0 && esm_dist_size(h) == 1 && !esm_dist_is_mpi(h) && esm_dist_local_rank(h) == 0);
        float send[3] = {1.5f, -2.0f, 3.25f}, recv[3] = {0};
        int counts[1] = {3};
        REQUIRE_OK(esm_dist_allgather_f32(h, send, recv, counts, &err), &err);
        CHECK(!memcmp(send, recv, sizeof send));
        REQUIRE_OK(esm_dist_check_same(h, 42, "a test value", &err), &err);
        int flag = -1;
        REQUIRE_OK(esm_dist_max_int(h, 7, &flag, &err), &err);
        CHECK(flag == 7);
        esm_dist_abort(h, 3); /* serial: returns, the caller exits itself */
        CHECK(esm_dist_bytes_sent(h) == 0 && esm_dist_comm_seconds(h) == 0);
        double buf[3] = {1, 2, 3};
        int one[1] = {3};
        REQUIRE_OK(esm_dist_allgather_inplace(h, buf, sizeof *buf, one, &err), &err);
        CHECK(buf[0] == 1 && buf[2] == 3); /* one rank: its block is the whole buffer */
    }
    esm_dist_free(d);
    esm_dist_free(NULL);
    REQUIRE_OK(esm_dist_serial(&d, &err), &err);
    CHECK(esm_dist_size(d) == 1);
    esm_dist_free(d);
}

TEST(dist_slices_are_contiguous_balanced_and_complete)
{
    for (int size = 1; size <= 7; size++)
        for (int n = 0; n <= 20; n++) {
            int next = 0, smallest = n, largest = 0;
            for (int r = 0; r < size; r++) {
                int lo, hi;
                esm_dist_slice(n, r, size, &lo, &hi);
                CHECKF(lo == next && hi >= lo, "n %d size %d rank %d: [%d, %d)", n, size, r, lo, hi);
                next = hi;
                smallest = hi - lo < smallest ? hi - lo : smallest;
                largest = hi - lo > largest ? hi - lo : largest;
            }
            CHECKF(next == n && largest - smallest <= 1, "n %d over %d ranks", n, size);
        }
}

TEST(dist_hash_is_fnv1a)
{
    /* Published FNV-1a 64 values: "" and "a". */
    CHECK(esm_dist_hash(ESM_DIST_HASH_INIT, "", 0) == 0xcbf29ce484222325ull);
    CHECK(esm_dist_hash(ESM_DIST_HASH_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);
    /* Continuing a hash equals hashing the concatenation. */
    CHECK(esm_dist_hash(esm_dist_hash(ESM_DIST_HASH_INIT, "ab", 2), "c", 1) ==
          esm_dist_hash(ESM_DIST_HASH_INIT, "abc", 3));
}

/* Runs steps of cfg (with a serial handle when with_dist) and returns the model's parameters. */
static float *train_params(const esm_dataset *ds, const esm_split *sp, const esm_train_config *cfg, int with_dist,
                           size_t *n, esm_err *err)
{
    esm_trainer *t = NULL;
    esm_dist *d = NULL;
    float *out = NULL;
    esm_status st = esm_trainer_create(cfg, ds, sp, &t, err);
    if (st == ESM_OK && with_dist)
        st = esm_dist_serial(&d, err);
    if (st == ESM_OK && with_dist)
        st = esm_trainer_set_dist(t, d, err);
    while (st == ESM_OK && esm_trainer_steps_done(t) < cfg->steps)
        st = esm_trainer_step(t, NULL, err);
    if (st == ESM_OK) {
        esm_model_view v = esm_trainer_model(t);
        *n = v.net.n_params;
        out = malloc(*n * sizeof *out);
        if (out)
            memcpy(out, v.params, *n * sizeof *out);
        st = esm_trainer_check_dist(t, err);
    }
    esm_trainer_free(t);
    esm_dist_free(d);
    if (st != ESM_OK) {
        free(out);
        out = NULL;
    }
    return out;
}

TEST(dist_serial_handle_changes_no_trainer_bit)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    esm_split sp;
    esm_err err = {0};
    REQUIRE_OK(esm_split_get(ds, "trainval", &sp, &err), &err);
    esm_train_config cfgs[3] = {esm_train_config_default(ESM_TRAINER_ES), esm_train_config_default(ESM_TRAINER_BACKPROP),
                                esm_train_config_default(ESM_TRAINER_BACKPROP)};
    cfgs[0].pop = 6;
    cfgs[2].episodes_per_step = 3;
    for (int k = 0; k < 3; k++) {
        esm_train_config *c = &cfgs[k];
        c->net.width = 8, c->net.depth = 2, c->shape = (esm_episode_shape){5, 1, 2}, c->steps = 11, c->seed = 3;
        size_t n1 = 0, n2 = 0;
        float *a = train_params(ds, &sp, c, 0, &n1, &err);
        float *b = a ? train_params(ds, &sp, c, 1, &n2, &err) : NULL;
        CHECKF(a && b && n1 == n2 && !memcmp(a, b, n1 * sizeof *a), "config %d: %s", k, err.msg);
        free(a), free(b);
    }
    /* Rejected: no episodes a step. */
    cfgs[1].episodes_per_step = 0;
    esm_trainer *t = NULL;
    CHECK(esm_trainer_create(&cfgs[1], ds, &sp, &t, &err) == ESM_EINVAL && err.field &&
          !strcmp(err.field, "episodes_per_step"));
    esm_split_free(&sp);
    esm_dataset_free(ds);
}

TEST(dist_episodes_per_step_saved_and_resumed)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    esm_split sp;
    esm_err err = {0};
    REQUIRE_OK(esm_split_get(ds, "trainval", &sp, &err), &err);
    esm_train_config c = esm_train_config_default(ESM_TRAINER_BACKPROP);
    c.net.width = 8, c.net.depth = 2, c.shape = (esm_episode_shape){5, 1, 2}, c.steps = 4, c.episodes_per_step = 2;
    char path[4200];
    snprintf(path, sizeof path, "%s/e2.ckpt", esm_test_tmpdir());
    esm_trainer *t = NULL;
    esm_train_stats s;
    REQUIRE_OK(esm_trainer_create(&c, ds, &sp, &t, &err), &err);
    REQUIRE_OK(esm_trainer_step(t, &s, &err), &err);
    CHECK(s.images == 2 * 5 * 3);
    REQUIRE_OK(esm_trainer_save(t, path, &err), &err);
    esm_trainer_free(t);
    REQUIRE_OK(esm_trainer_resume(path, ds, &sp, &t, &err), &err);
    CHECK(esm_trainer_config(t)->episodes_per_step == 2);
    esm_trainer_free(t);
    /* Checkpoints from before the key existed read as one episode a step. */
    esm_train_config back;
    REQUIRE_OK(esm_config_from_text("trainer=backprop\n", 17, &back, "old", &err), &err);
    CHECK(back.episodes_per_step == 1);
    esm_split_free(&sp);
    esm_dataset_free(ds);
}
