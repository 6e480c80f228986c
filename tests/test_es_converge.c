/* Convergence of each strategy on sphere, Rosenbrock and Rastrigin. Budgets and thresholds
 * are per strategy and deliberately realistic: fixed-sigma OpenAI-ES and speed-capped
 * PGPE/ClipUp stall at a noise floor set by their step sizes, while sep-CMA and SNES adapt
 * their sigmas and converge linearly. Each case states its threshold and generation budget;
 * f is measured at the centre (the search distribution's mean). */
#include "es_helpers.h"
#include "harness.h"


typedef struct {
    const char *strategy;
    es_objective f;
    size_t dim;
    float x0, sigma0;
    int popsize;    /* 0: default */
    float lr;       /* 0: default; ClipUp speed cap is 2 lr */
    int gens;
    double target;  /* f(centre) must end below this */
} conv_case;

static void run_case(esm_tctx *t_, conv_case c)
{
    esm_err err = {0};
    esm_es_config cfg;
    REQUIRE_OK(esm_es_config_init(&cfg, c.strategy, c.dim, &err), &err);
    cfg.seed = 20260101;
    cfg.sigma0 = c.sigma0;
    cfg.optim.weight_decay = 0; /* decay would bias the optimum away from Rosenbrock's (1..1) */
    if (c.popsize)
        cfg.popsize = c.popsize;
    if (c.lr > 0) {
        cfg.optim.lr = c.lr;
        cfg.optim.max_speed = 2 * c.lr;
    }
    float *x0 = malloc(c.dim * sizeof *x0);
    REQUIRE(x0);
    for (size_t j = 0; j < c.dim; j++)
        x0[j] = c.x0;
    double f0 = c.f(x0, c.dim);
    esm_es *es;
    REQUIRE_OK(esm_es_create(&es, &cfg, x0, &err), &err);
    free(x0);
    REQUIRE_OK(es_run(es, c.f, c.gens, &err), &err);
    double f = c.f(esm_es_mean(es), c.dim);
    CHECKF(f < c.target, "%s dim %zu: f(centre) %.4g -> %.4g after %d generations, wanted < %.3g",
           c.strategy, c.dim, f0, f, c.gens, c.target);
    esm_es_free(es);
}

/* ---- sep-CMA-ES: default popsize and learning rates ---- */
TEST(es_sepcma_sphere100)
{
    run_case(t_, (conv_case){"sep-cma", es_sphere, 100, 1.0f, 1.0f, 0, 0, 400, 1e-3});
}
TEST(es_sepcma_sphere1000)
{
    run_case(t_, (conv_case){"sep-cma", es_sphere, 1000, 0.1f, 0.1f, 0, 0, 1200, 0.1});
}
TEST(es_sepcma_rosenbrock10)
{
    run_case(t_, (conv_case){"sep-cma", es_rosenbrock, 10, 0.0f, 0.5f, 0, 0, 3000, 1e-2});
}
TEST(es_sepcma_rastrigin10)
{
    run_case(t_, (conv_case){"sep-cma", es_rastrigin, 10, 3.0f, 2.0f, 100, 0, 1000, 5.0});
}

/* ---- SNES: default popsize and learning rates except where stated ---- */
TEST(es_snes_sphere100)
{
    run_case(t_, (conv_case){"snes", es_sphere, 100, 1.0f, 1.0f, 0, 0, 1000, 1e-3});
}
TEST(es_snes_sphere1000)
{
    /* eta_sigma = (3 + ln d) / (5 sqrt d) ~ 0.0063 at d = 1000: sigma shrinks slowly, so
     * only a modest reduction fits the time budget. */
    run_case(t_, (conv_case){"snes", es_sphere, 1000, 0.1f, 0.1f, 0, 0, 1200, 5.0});
}
TEST(es_snes_rosenbrock10)
{
    run_case(t_, (conv_case){"snes", es_rosenbrock, 10, 0.0f, 0.5f, 40, 0, 4000, 0.5});
}
TEST(es_snes_rastrigin10)
{
    run_case(t_, (conv_case){"snes", es_rastrigin, 10, 3.0f, 2.0f, 100, 0, 1000, 5.0});
}

/* ---- OpenAI-ES: Adam, fixed sigma ---- */
TEST(es_openai_sphere100)
{
    run_case(t_, (conv_case){"openai-es", es_sphere, 100, 1.0f, 0.01f, 50, 0.005f, 1000, 5e-3});
}
TEST(es_openai_sphere1000)
{
    run_case(t_, (conv_case){"openai-es", es_sphere, 1000, 0.3f, 0.01f, 50, 0.005f, 600, 0.5});
}
TEST(es_openai_rosenbrock10)
{
    run_case(t_, (conv_case){"openai-es", es_rosenbrock, 10, 0.0f, 0.02f, 20, 0.005f, 3000, 0.3});
}
TEST(es_openai_rastrigin10)
{
    /* A wide fixed sigma smooths Rastrigin's ripples away: the centre finds the basin of 0. */
    run_case(t_, (conv_case){"openai-es", es_rastrigin, 10, 3.0f, 1.0f, 100, 0.02f, 1000, 3.0});
}

/* ---- PGPE: ClipUp (speed cap 2 lr, momentum 0.9), centred ranks ---- */
TEST(es_pgpe_sphere100)
{
    run_case(t_, (conv_case){"pgpe", es_sphere, 100, 1.0f, 0.1f, 50, 0.01f, 1500, 1e-2});
}
TEST(es_pgpe_sphere1000)
{
    run_case(t_, (conv_case){"pgpe", es_sphere, 1000, 0.3f, 0.1f, 50, 0.01f, 1200, 0.5});
}
TEST(es_pgpe_rosenbrock10)
{
    run_case(t_, (conv_case){"pgpe", es_rosenbrock, 10, 0.0f, 0.1f, 20, 0.01f, 1500, 1.0});
}
TEST(es_pgpe_rastrigin10)
{
    run_case(t_, (conv_case){"pgpe", es_rastrigin, 10, 3.0f, 1.0f, 100, 0.02f, 1000, 3.0});
}
