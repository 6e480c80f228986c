/* Trainer plumbing: the configuration's text form, learning-rate halving, split identity. */
#include <string.h>

#include "esmeta.h"
#include "harness.h"
#include "train/trainer_internal.h"

TEST(train_config_text_round_trip_is_exact)
{
    esm_train_config c = esm_train_config_default(ESM_TRAINER_ES), back;
    c.lr = 0.1f; /* not representable in decimal: the text form must still be exact */
    c.sigma = 1.0f / 3.0f;
    c.weight_decay = 5e-4f;
    c.seed = 18446744073709551615ull;
    c.split_hash = 1234567890123ull;
    c.shape = (esm_episode_shape){20, 1, 15};
    snprintf(c.split, sizeof c.split, "/some/path with spaces/split.txt");
    char text[4096];
    int n = esm_config_to_text(&c, text, sizeof text);
    REQUIRE(n > 0 && n < (int)sizeof text);
    esm_err err = {0};
    REQUIRE_OK(esm_config_from_text(text, (size_t)n, &back, "test", &err), &err);
    CHECK(back.trainer == c.trainer && back.lr == c.lr && back.sigma == c.sigma && back.weight_decay == c.weight_decay);
    CHECK(back.seed == c.seed && back.split_hash == c.split_hash && !strcmp(back.split, c.split));
    CHECK(back.shape.way == 20 && back.shape.shot == 1 && back.shape.query == 15);
    CHECK(back.net.width == c.net.width && back.net.depth == c.net.depth && back.net.in_height == 28);
    CHECK(!strcmp(back.strategy, c.strategy) && back.pop == c.pop && back.episodes_per_gen == c.episodes_per_gen);
    CHECK(esm_config_from_text("way=abc\n", 8, &back, "cfg", &err) == ESM_EFORMAT);
    CHECK(strstr(err.msg, "way") != NULL);
    CHECK(esm_config_from_text("no equals sign\n", 15, &back, "cfg", &err) == ESM_EFORMAT);
}

TEST(train_lr_halving_schedule)
{
    esm_train_config c = esm_train_config_default(ESM_TRAINER_BACKPROP);
    CHECK(c.lr == 1e-3f && c.lr_halve_every == 2000);
    CHECK(esm_lr_at(&c, 0) == 1e-3f);
    CHECK(esm_lr_at(&c, 1999) == 1e-3f);
    CHECK(esm_lr_at(&c, 2000) == 5e-4f);
    CHECK(esm_lr_at(&c, 4500) == 2.5e-4f);
    c.lr_halve_every = 0;
    CHECK(esm_lr_at(&c, 100000) == 1e-3f);
}

TEST(train_split_hash_identifies_the_class_list)
{
    esm_dataset *ds = esm_test_dataset();
    REQUIRE(ds);
    esm_split a, b, c;
    esm_err err = {0};
    REQUIRE_OK(esm_split_get(ds, "trainval", &a, &err), &err);
    REQUIRE_OK(esm_split_get(ds, "trainval", &b, &err), &err);
    REQUIRE_OK(esm_split_get(ds, "train", &c, &err), &err);
    CHECK(esm_split_hash(ds, &a) == esm_split_hash(ds, &b));
    CHECK(esm_split_hash(ds, &a) != esm_split_hash(ds, &c));
    b.classes[7].rot = (b.classes[7].rot + 1) % 4;
    CHECK(esm_split_hash(ds, &a) != esm_split_hash(ds, &b));
    esm_split_free(&a), esm_split_free(&b), esm_split_free(&c);
    esm_dataset_free(ds);
}

TEST(train_all_finite_detects_nan_and_inf)
{
    float x[100];
    for (int i = 0; i < 100; i++)
        x[i] = (float)i - 50.0f;
    CHECK(esm_all_finite(x, 100));
    x[63] = NAN;
    CHECK(!esm_all_finite(x, 100));
    x[63] = -INFINITY;
    CHECK(!esm_all_finite(x, 100));
    x[63] = 3.0e38f;
    CHECK(esm_all_finite(x, 100));
}
