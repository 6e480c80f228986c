/* The gradient estimates bench/bench_es_cosine.c sets beside backprop (es/estimate.h): the cosine,
 * openai-es's estimate being exactly what its tell steps along, the antithetic estimator's
 * cosine with a known gradient against theory, and the member evaluator's loss at sigma 0 being
 * the backprop path's loss. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "es/estimate.h"
#include "es_helpers.h"
#include "esmeta.h"
#include "harness.h"
#include "popeval/popeval.h"

TEST(es_cosine_of_known_vectors)
{
    float a[3] = {1, 2, 3}, b[3] = {-2, -4, -6}, c[3] = {3, 0, -1}, z[3] = {0};
    CHECK_NEAR(esm_cosine(a, a, 3), 1, 1e-12);
    CHECK_NEAR(esm_cosine(a, b, 3), -1, 1e-12);
    CHECK_NEAR(esm_cosine(a, c, 3), 0, 1e-12);
    CHECK_NEAR(esm_cosine(a, z, 3), 0, 0); /* undefined: reported as 0 */
    CHECK_NEAR(esm_cosine(c, a, 2), 1 / sqrt(5.0), 1e-12); /* the first n only */
    CHECK_NEAR(esm_norm(b, 3), sqrt(56.0), 1e-12);
}

/* fitness = -(1/2) sum_j c_j x_j^2: gradient -c * x, and a central difference is exact. */
static float quad_fitness(const float *x, size_t n)
{
    double s = 0;
    for (size_t j = 0; j < n; j++)
        s += (0.5 + (double)(j % 4) * 0.5) * x[j] * x[j];
    return (float)(-0.5 * s);
}

/* Mean over `trials` seeds of cos(estimate, true gradient) at popsize p (estimator k: 0 openai-es,
 * 1 antithetic), and of |estimate| / |gradient| into *ratio (may be NULL); -2 on a failure. */
static double mean_cos(size_t n, int p, int k, int trials, const float *x0, const float *grad, double *ratio)
{
    float *fit = malloc((size_t)p * sizeof *fit), *th = malloc(n * sizeof *th), *g = malloc(n * sizeof *g);
    double sum = 0, rsum = 0;
    int ok = fit && th && g;
    for (int t = 0; ok && t < trials; t++) {
        esm_es_config c;
        esm_es *es = NULL;
        ok = esm_es_config_init(&c, "openai-es", n, NULL) == ESM_OK;
        c.popsize = p, c.seed = 1000 + (uint64_t)t, c.sigma0 = 0.05f;
        ok = ok && esm_es_create(&es, &c, x0, NULL) == ESM_OK;
        for (int i = 0; ok && i < p; i++) {
            esm_es_member(es, i, th);
            fit[i] = quad_fitness(th, n);
        }
        ok = ok && (k ? esm_es_antithetic_gradient(es, fit, g, NULL) : esm_es_gradient_estimate(es, fit, g, NULL)) ==
                       ESM_OK;
        if (ok)
            sum += esm_cosine(g, grad, n), rsum += esm_norm(g, n) / esm_norm(grad, n);
        esm_es_free(es);
    }
    free(fit), free(th), free(g);
    if (ratio)
        *ratio = rsum / trials;
    return ok ? sum / trials : -2;
}

TEST(es_antithetic_estimate_cosine_grows_with_pop_as_theory_says)
{
    /* On a quadratic the pair's central difference is exactly grad . e, so the estimate is
     * (1/K) sum_k (grad . e_k) e_k, K = P/2, and cos(estimate, grad) is about sqrt(K / (K + n + 1))
     * (E|g.e|^2 = |g|^2, E|(g.e) e|^2 = (n + 2)|g|^2), with |estimate| about sqrt((K + n + 1) / K)
     * |grad|. n = 100: cosines 0.271, 0.748, 0.976. */
    enum { N = 100 };
    float x0[N], grad[N];
    for (size_t j = 0; j < N; j++) {
        x0[j] = (float)sin(1.0 + (double)j);
        grad[j] = (float)(-(0.5 + (double)(j % 4) * 0.5) * x0[j]);
    }
    int pops[3] = {16, 256, 4096};
    double prev = -1;
    for (int i = 0; i < 3; i++) {
        double k = pops[i] / 2.0, want = sqrt(k / (k + N + 1)), ratio;
        double got = mean_cos(N, pops[i], 1, 16, x0, grad, &ratio);
        CHECKF(fabs(got - want) < 0.05, "P = %d: mean cosine %.4f, theory %.4f", pops[i], got, want);
        CHECKF(fabs(ratio * want - 1) < 0.1, "P = %d: |estimate| / |grad| %.4f, theory %.4f", pops[i], ratio, 1 / want);
        CHECKF(got > prev, "P = %d: mean cosine %.4f is not above the smaller population's %.4f", pops[i], got, prev);
        prev = got;
    }
    /* openai-es's centred ranks point the same way, better as P grows, not beyond 1. */
    double c64 = mean_cos(N, 64, 0, 8, x0, grad, NULL), c1024 = mean_cos(N, 1024, 0, 8, x0, grad, NULL);
    CHECKF(c64 > 0.3 && c1024 > c64 + 0.2 && c1024 <= 1, "openai-es estimate: cosine %.4f at P = 64, %.4f at 1024",
           c64, c1024);
}

TEST(es_openai_estimate_is_what_its_tell_steps_along)
{
    /* With SGD (lr 1, no momentum, no decay) the tell moves the centre by exactly the estimate. */
    size_t n = 2500; /* over two chunks */
    esm_es_config c;
    esm_err err;
    REQUIRE_OK(esm_es_config_init(&c, "openai-es", n, &err), &err);
    c.popsize = 12, c.sigma0 = 0.1f, c.seed = 5;
    c.optim.kind = ESM_OPTIM_SGD, c.optim.lr = 1, c.optim.momentum = 0, c.optim.weight_decay = 0;
    float *x0 = malloc(n * sizeof *x0), *g = malloc(n * sizeof *g), *th = malloc(n * sizeof *th);
    float fit[12];
    REQUIRE(x0 && g && th);
    for (size_t j = 0; j < n; j++)
        x0[j] = (float)cos((double)j);
    esm_es *es;
    REQUIRE_OK(esm_es_create(&es, &c, x0, &err), &err);
    for (int i = 0; i < c.popsize; i++) {
        esm_es_member(es, i, th);
        fit[i] = i == 3 ? NAN : quad_fitness(th, n); /* a non-finite member ranks last in both */
    }
    REQUIRE_OK(esm_es_gradient_estimate(es, fit, g, &err), &err);
    REQUIRE_OK(esm_es_tell(es, fit, NULL, &err), &err);
    double worst = 0, gmax = 0;
    for (size_t j = 0; j < n; j++) {
        worst = fmax(worst, fabs((esm_es_mean(es)[j] - x0[j]) - g[j]));
        gmax = fmax(gmax, fabs(g[j]));
    }
    CHECKF(gmax > 0.1 && worst < 1e-6, "step - estimate differs by up to %g (largest estimate %g)", worst, gmax);
    /* The antithetic estimator needs every member finite; neither works where it is not defined. */
    CHECK(esm_es_antithetic_gradient(es, fit, g, &err) == ESM_ENONFINITE && strstr(err.msg, "member 3"));
    esm_es_free(es);
    REQUIRE_OK(esm_es_config_init(&c, "openai-es", n, &err), &err);
    c.antithetic = 0;
    REQUIRE_OK(esm_es_create(&es, &c, x0, &err), &err);
    CHECK(esm_es_antithetic_gradient(es, fit, g, &err) == ESM_EINVAL && strstr(err.msg, "antithetic"));
    esm_es_free(es);
    REQUIRE_OK(esm_es_config_init(&c, "pgpe", n, &err), &err);
    REQUIRE_OK(esm_es_create(&es, &c, x0, &err), &err);
    CHECK(esm_es_gradient_estimate(es, fit, g, &err) == ESM_EUNSUPPORTED && strstr(err.msg, "openai-es"));
    esm_es_free(es);
    free(x0), free(g), free(th);
}

TEST(es_member_loss_at_sigma0_is_the_backprop_loss)
{
    /* The bench compares member estimates with backprop gradients: both must score the same loss
     * (batch statistics over the whole episode), so theta scored as a member with zero noise scale
     * gives the loss esm_protonet_loss_grad gives. */
    enum { WAY = 4, SHOT = 2, QUERY = 3 };
    esm_err err = {0};
    es_synth_episode syn;
    REQUIRE_OK(es_synth_episode_make(&syn, WAY, SHOT, QUERY, 31, &err), &err);
    const esm_net *net = &syn.net;
    size_t n = net->n_params;
    float *theta = malloc(n * sizeof *theta), *zero = calloc(n, sizeof *zero), *grad = malloc(n * sizeof *grad);
    REQUIRE(theta && zero && grad);
    esm_net_init_params(net, 9, theta, NULL);
    esm_protonet_ws *ws = NULL;
    REQUIRE_OK(esm_protonet_ws_create(net, WAY, SHOT, WAY * QUERY, 1, &ws, &err), &err);
    float lb, ab;
    REQUIRE_OK(esm_protonet_loss_grad(net, theta, NULL, ESM_BN_BATCH, ws, syn.sup, WAY, SHOT, syn.qry, syn.lab,
                                      WAY * QUERY, &lb, &ab, grad, &err),
               &err);
    esm_popeval pe = {0};
    REQUIRE_OK(esm_popeval_open("cpu", net, syn.ep.shape, 2, 0, 0, &pe, &err), &err);
    esm_popeval_job job = {.eps = &syn.ep, .n_eps = 1, .begin = 0, .count = 2,
                           .pop = {.mean = theta, .scale = zero, .dim = n, .popsize = 2, .seed = 3, .antithetic = 1}};
    float loss[2], acc[2], fit[2];
    REQUIRE_OK(esm_popeval_evaluate(&pe, &job, loss, acc, fit, &err), &err);
    for (int i = 0; i < 2; i++)
        CHECKF(fabsf(loss[i] - lb) <= 1e-6f * fabsf(lb) && fit[i] == -loss[i] && acc[i] == ab,
               "member %d: loss %.9g, acc %g; backprop loss %.9g, acc %g", i, loss[i], acc[i], lb, ab);
    esm_popeval_close(&pe);
    esm_protonet_ws_free(ws);
    free(theta), free(zero), free(grad);
}
