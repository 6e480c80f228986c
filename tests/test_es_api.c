/* ES configuration, defaults, bad input and member regeneration. */
#include <string.h>

#include "es_helpers.h"
#include "harness.h"

static const char *const all_strategies[] = {"openai-es", "pgpe", "snes", "sep-cma"};

TEST(es_names_and_unknown_strategy)
{
    const char *const *names = esm_es_strategy_names();
    int n = 0;
    while (names[n])
        n++;
    CHECK(n == 4);
    esm_err err = {0};
    esm_es_config cfg;
    CHECK(esm_es_config_init(&cfg, "cma-es", 10, &err) == ESM_ENOTFOUND);
    for (int i = 0; i < 4; i++)
        CHECKF(strstr(err.msg, all_strategies[i]), "message lacks %s: %s", all_strategies[i], err.msg);
    CHECK(strstr(err.msg, "cma-es") != NULL);
    REQUIRE_OK(esm_es_config_init(&cfg, "snes", 10, &err), &err);
    cfg.strategy = "nes";
    esm_es *es = NULL;
    CHECK(esm_es_create(&es, &cfg, NULL, &err) == ESM_ENOTFOUND && es == NULL);
    CHECK(strstr(err.msg, "sep-cma") != NULL);
}

/* What each strategy leaves to its caller; a library user is refused what the strategy ignores. */
TEST(es_capabilities_state_what_a_strategy_leaves_to_the_caller)
{
    const unsigned want[] = {ESM_ES_CAN_SCHEDULE_SIGMA | ESM_ES_CAN_SHAPE | ESM_ES_CAN_ESTIMATE, ESM_ES_CAN_SHAPE, 0,
                             0};
    for (int k = 0; k < 4; k++)
        CHECKF(esm_es_capabilities(all_strategies[k]) == want[k], "%s: capabilities %u, expected %u",
               all_strategies[k], esm_es_capabilities(all_strategies[k]), want[k]);
    CHECK(esm_es_capabilities("cma-es") == 0 && esm_es_capabilities(NULL) == 0);
    esm_err err = {0};
    for (int k = 2; k < 4; k++) {
        esm_es_config c;
        REQUIRE_OK(esm_es_config_init(&c, all_strategies[k], 10, &err), &err);
        c.shaping = ESM_ES_SHAPING_ZSCORE;
        esm_es *es = NULL;
        CHECKF(esm_es_create(&es, &c, NULL, &err) == ESM_EINVAL && es == NULL && err.field &&
               !strcmp(err.field, "shaping") && strstr(err.msg, all_strategies[k]),
               "%s with z-scores: %s", all_strategies[k], err.msg);
        esm_es_free(es);
    }
}

TEST(es_defaults_follow_papers)
{
    esm_err err;
    esm_es_config c;
    REQUIRE_OK(esm_es_config_init(&c, "snes", 100, &err), &err);
    CHECK(c.popsize == 4 + 13); /* 4 + floor(3 ln 100) */
    CHECK_NEAR(c.sigma_lr, (3 + log(100.0)) / (5 * 10.0), 1e-6);
    CHECK_NEAR(c.mean_lr, 1.0, 0);
    CHECK(c.antithetic == 0);
    REQUIRE_OK(esm_es_config_init(&c, "sep-cma", 1000, &err), &err);
    CHECK(c.popsize == 4 + 20);
    CHECK(c.antithetic == 0);
    REQUIRE_OK(esm_es_config_init(&c, "openai-es", 100, &err), &err);
    CHECK(c.antithetic == 1 && c.popsize % 2 == 0);
    CHECK(c.optim.kind == ESM_OPTIM_ADAM);
    CHECK_NEAR(c.sigma0, 0.02, 1e-9);
    CHECK_NEAR(c.optim.lr, 0.01, 1e-9);
    CHECK_NEAR(c.optim.weight_decay, 0.005, 1e-9);
    REQUIRE_OK(esm_es_config_init(&c, "pgpe", 100, &err), &err);
    CHECK(c.optim.kind == ESM_OPTIM_CLIPUP && c.shaping == ESM_ES_SHAPING_RANKS);
    CHECK_NEAR(c.optim.lr, c.optim.max_speed / 2, 1e-9);
    CHECK_NEAR(c.sigma_max_change, 0.2, 1e-7);
}

/* Creating with cfg must fail with code, and the message must mention `word`. */
static void expect_reject(esm_tctx *t_, const esm_es_config *cfg, esm_status code, const char *word)
{
    esm_err err = {0};
    esm_es *es = (esm_es *)1;
    esm_status s = esm_es_create(&es, cfg, NULL, &err);
    CHECKF(s == code, "%s: got %s (%s), wanted %s", cfg->strategy, esm_status_name(s), err.msg, esm_status_name(code));
    CHECK(es == NULL);
    CHECKF(strstr(err.msg, word), "message '%s' should mention '%s'", err.msg, word);
}

TEST(es_rejects_bad_config)
{
    esm_err err;
    for (int k = 0; k < 4; k++) {
        esm_es_config base, c;
        REQUIRE_OK(esm_es_config_init(&base, all_strategies[k], 10, &err), &err);
        c = base, c.dim = 0;
        expect_reject(t_, &c, ESM_EINVAL, "dim");
        c = base, c.sigma0 = 0;
        expect_reject(t_, &c, ESM_EINVAL, "sigma0");
        c = base, c.sigma0 = -1;
        expect_reject(t_, &c, ESM_EINVAL, "sigma0");
        c = base, c.sigma0 = NAN;
        expect_reject(t_, &c, ESM_EINVAL, "sigma0");
        c = base, c.popsize = 1;
        expect_reject(t_, &c, ESM_EINVAL, "popsize");
        c = base, c.antithetic = 1, c.popsize = 7;
        expect_reject(t_, &c, ESM_EINVAL, "odd");
    }
    const char *with_lr[] = {"openai-es", "pgpe"};
    for (int k = 0; k < 2; k++) {
        esm_es_config c;
        REQUIRE_OK(esm_es_config_init(&c, with_lr[k], 10, &err), &err);
        c.optim.lr = 0;
        expect_reject(t_, &c, ESM_EINVAL, "lr");
        c.optim.lr = -0.1f;
        expect_reject(t_, &c, ESM_EINVAL, "lr");
        c.optim.lr = 0.01f, c.optim.kind = ESM_OPTIM_ADAM, c.optim.beta2 = 1;
        expect_reject(t_, &c, ESM_EINVAL, "beta");
        c.optim.beta2 = 0.999f, c.shaping = (esm_es_shaping)7;
        expect_reject(t_, &c, ESM_EINVAL, "shaping");
    }
    esm_es_config c;
    REQUIRE_OK(esm_es_config_init(&c, "snes", 10, &err), &err);
    c.sigma_lr = 0;
    expect_reject(t_, &c, ESM_EINVAL, "sigma_lr");
    REQUIRE_OK(esm_es_config_init(&c, "pgpe", 10, &err), &err);
    c.sigma_max_change = 1.5f;
    expect_reject(t_, &c, ESM_EINVAL, "sigma_max_change");
    REQUIRE_OK(esm_es_config_init(&c, "sep-cma", 10, &err), &err);
    c.mean_lr = 0;
    expect_reject(t_, &c, ESM_EINVAL, "mean_lr");
}

TEST(es_member_is_mean_plus_scaled_noise)
{
    esm_err err;
    size_t dim = 2500; /* spans several RNG blocks and update chunks */
    for (int k = 0; k < 4; k++) {
        esm_es_config c;
        REQUIRE_OK(esm_es_config_init(&c, all_strategies[k], dim, &err), &err);
        c.popsize = 8;
        c.antithetic = 1;
        c.seed = 77;
        esm_es *es;
        REQUIRE_OK(esm_es_create(&es, &c, NULL, &err), &err);
        REQUIRE_OK(es_run(es, es_sphere, 2, &err), &err); /* non-trivial mean and scales */
        float *a = malloc(dim * sizeof *a), *b = malloc(dim * sizeof *b);
        float *z = malloc(dim * sizeof *z), *s = malloc(dim * sizeof *s);
        REQUIRE(a && b && z && s);
        esm_es_scale_range(es, 0, dim, s);
        const float *m = esm_es_mean(es);
        for (int i = 0; i < 8; i++) {
            esm_es_member(es, i, a);
            esm_es_noise_range(77, esm_es_generation(es), i, 1, 0, dim, z);
            int same = 1;
            for (size_t j = 0; j < dim; j++)
                same &= a[j] == m[j] + s[j] * z[j];
            CHECKF(same, "%s member %d is not mean + scale * noise(seed, gen, i)", all_strategies[k], i);
            /* Any slice rebuilds alone: what a sharded evaluator relies on. */
            esm_es_member_range(es, i, 1021, 700, b);
            CHECK(memcmp(a + 1021, b, 700 * sizeof *b) == 0);
        }
        /* Antithetic: members 2k and 2k+1 mirror each other about the mean. */
        esm_es_noise_range(77, esm_es_generation(es), 4, 1, 0, dim, a);
        esm_es_noise_range(77, esm_es_generation(es), 5, 1, 0, dim, b);
        int mirrored = 1;
        for (size_t j = 0; j < dim; j++)
            mirrored &= a[j] == -b[j];
        CHECK(mirrored);
        free(a), free(b), free(z), free(s);
        esm_es_free(es);
    }
}

/* The weights of fit[] by hand: centred ranks (best +0.5, worst -0.5) or z-scores. */
static void hand_weights(esm_es_shaping how, const float *fit, int p, double *w)
{
    double mean = 0, sq = 0;
    for (int i = 0; i < p; i++)
        mean += fit[i] / (double)p;
    for (int i = 0; i < p; i++)
        sq += (fit[i] - mean) * (fit[i] - mean) / p;
    for (int i = 0; i < p; i++) {
        int below = 0;
        for (int q = 0; q < p; q++)
            below += fit[q] < fit[i] || (fit[q] == fit[i] && q > i);
        w[i] = how == ESM_ES_SHAPING_ZSCORE ? (fit[i] - mean) / sqrt(sq) : (double)below / (p - 1) - 0.5;
    }
}

/* OpenAI-ES with plain SGD: new mean - old mean = lr / (P sigma) sum_i w_i eps_i, with
 * eps_i = (member_i - mean) / sigma taken from the members the caller evaluated. */
static void check_hand_update(esm_tctx *t_, esm_es_shaping how)
{
    esm_err err;
    size_t dim = 3000;
    int p = 10;
    esm_es_config c;
    REQUIRE_OK(esm_es_config_init(&c, "openai-es", dim, &err), &err);
    c.popsize = p;
    c.sigma0 = 0.5f;
    c.optim.kind = ESM_OPTIM_SGD;
    c.optim.momentum = 0;
    c.optim.lr = 0.1f;
    c.optim.weight_decay = 0;
    c.shaping = how;
    float *x0 = malloc(dim * sizeof *x0);
    REQUIRE(x0);
    for (size_t j = 0; j < dim; j++)
        x0[j] = (float)(j % 7) * 0.1f;
    esm_es *es;
    REQUIRE_OK(esm_es_create(&es, &c, x0, &err), &err);
    float fit[10] = {3, 1, 4, 1.5f, 5, 9, 2, 6, 5.5f, 3.5f};
    double w[10];
    hand_weights(how, fit, p, w);
    double *want = calloc(dim, sizeof *want);
    float *th = malloc(dim * sizeof *th);
    REQUIRE(want && th);
    for (int i = 0; i < p; i++) {
        esm_es_member(es, i, th);
        for (size_t j = 0; j < dim; j++)
            want[j] += c.optim.lr / (p * c.sigma0) * w[i] * ((th[j] - x0[j]) / c.sigma0);
    }
    esm_es_report rep;
    REQUIRE_OK(esm_es_tell(es, fit, &rep, &err), &err);
    double worst = 0, norm = 0;
    for (size_t j = 0; j < dim; j++) {
        double got = esm_es_mean(es)[j] - x0[j];
        worst = fmax(worst, fabs(got - want[j]));
        norm += got * got;
    }
    CHECKF(worst < 1e-5, "largest deviation from the hand-computed update: %g", worst);
    CHECK_NEAR(rep.update_norm, sqrt(norm), 1e-4 * sqrt(norm));
    CHECK(rep.n_nonfinite == 0);
    CHECK_NEAR(rep.fitness_max, 9, 0);
    CHECK_NEAR(rep.fitness_mean, 4.05, 1e-6);
    CHECK(esm_es_generation(es) == 1);
    free(x0), free(want), free(th);
    esm_es_free(es);
}

TEST(es_update_uses_the_members_that_were_evaluated)
{
    check_hand_update(t_, ESM_ES_SHAPING_RANKS);
}

TEST(es_zscore_shaping_weights_members_by_standardised_fitness)
{
    check_hand_update(t_, ESM_ES_SHAPING_ZSCORE);
}

/* A sigma schedule: after esm_es_set_sigma the members are mean + sigma * the same noise;
 * strategies that adapt their own sigma refuse it. */
TEST(es_set_sigma_rescales_the_members)
{
    esm_err err;
    size_t dim = 500;
    esm_es_config c;
    REQUIRE_OK(esm_es_config_init(&c, "openai-es", dim, &err), &err);
    c.sigma0 = 0.5f;
    float *x0 = calloc(dim, sizeof *x0), *a = malloc(dim * sizeof *a), *b = malloc(dim * sizeof *b);
    REQUIRE(x0 && a && b);
    esm_es *es;
    REQUIRE_OK(esm_es_create(&es, &c, x0, &err), &err);
    esm_es_member(es, 3, a);
    REQUIRE_OK(esm_es_set_sigma(es, 0.125f, &err), &err);
    esm_es_member(es, 3, b);
    int quarter = 1;
    for (size_t j = 0; j < dim; j++)
        quarter &= b[j] == a[j] / 4; /* centre 0: a member is sigma * noise, scaled by a power of 2 */
    CHECK(quarter);
    CHECK(esm_es_get_config(es)->sigma0 == 0.125f);
    CHECK(esm_es_set_sigma(es, 0, &err) == ESM_EINVAL && strstr(err.msg, "sigma 0"));
    esm_es_free(es);
    REQUIRE_OK(esm_es_config_init(&c, "pgpe", dim, &err), &err);
    REQUIRE_OK(esm_es_create(&es, &c, x0, &err), &err);
    CHECK(esm_es_set_sigma(es, 0.1f, &err) == ESM_EUNSUPPORTED && strstr(err.msg, "pgpe"));
    esm_es_free(es);
    free(x0), free(a), free(b);
}

TEST(es_weight_decay_alone_when_fitness_is_flat)
{
    /* Equal fitness carries no signal (tied centred ranks are all 0), so OpenAI-ES with SGD
     * moves by the L2 decay only. The decay is OpenAI's l2coeff, taken with the 1/sigma this
     * gradient has and theirs has not: mean -= lr * (weight_decay / sigma) * mean. */
    esm_err err;
    size_t dim = 1100;
    esm_es_config c;
    REQUIRE_OK(esm_es_config_init(&c, "openai-es", dim, &err), &err);
    c.optim.kind = ESM_OPTIM_SGD;
    c.optim.momentum = 0;
    c.optim.lr = 0.5f;
    c.optim.weight_decay = 0.1f;
    c.sigma0 = 0.25f; /* decay factor per unit lr: 0.1 / 0.25 = 0.4 */
    float *x0 = malloc(dim * sizeof *x0);
    float *flat = malloc((size_t)c.popsize * sizeof *flat);
    REQUIRE(x0 && flat);
    for (size_t j = 0; j < dim; j++)
        x0[j] = (float)j / dim - 0.5f;
    for (int i = 0; i < c.popsize; i++)
        flat[i] = 2.5f;
    esm_es *es;
    REQUIRE_OK(esm_es_create(&es, &c, x0, &err), &err);
    REQUIRE_OK(esm_es_tell(es, flat, NULL, &err), &err);
    double worst = 0;
    for (size_t j = 0; j < dim; j++)
        worst = fmax(worst, fabs(esm_es_mean(es)[j] - x0[j] * (1 - 0.5 * 0.4)));
    CHECKF(worst < 1e-6, "largest deviation from pure decay: %g", worst);
    /* A schedule's new rate applies from the next tell; bad rates are refused and change nothing. */
    CHECK(esm_es_set_lr(es, 0.0f, &err) == ESM_EINVAL && strstr(err.msg, "learning rate 0"));
    CHECK(esm_es_set_lr(es, NAN, &err) == ESM_EINVAL);
    REQUIRE_OK(esm_es_set_lr(es, 0.25f, &err), &err);
    CHECK(esm_es_get_config(es)->optim.lr == 0.25f);
    REQUIRE_OK(esm_es_tell(es, flat, NULL, &err), &err);
    worst = 0;
    for (size_t j = 0; j < dim; j++)
        worst = fmax(worst, fabs(esm_es_mean(es)[j] - x0[j] * (1 - 0.5 * 0.4) * (1 - 0.25 * 0.4)));
    CHECKF(worst < 1e-6, "largest deviation from decay at the new rate: %g", worst);
    free(x0), free(flat);
    esm_es_free(es);
}
