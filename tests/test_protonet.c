/* The prototypical-network head and episode losses. */
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

TEST(protonet_head_hand_example)
{
    /* 2-way 1-shot in one dimension: prototypes 0 and 2, query 0.5 of class 0.
     * logits -0.25 and -2.25: loss = log(1 + e^-2), accuracy 1. */
    float s[2] = {0.0f, 2.0f}, q[1] = {0.5f}, scratch[16], loss, acc, ds[2], dq[1];
    int lab[1] = {0};
    REQUIRE(esm_protonet_head_scratch(2, 1, 1) <= 16);
    esm_err err = {0};
    REQUIRE_OK(esm_protonet_head(s, q, lab, 2, 1, 1, 1, scratch, &loss, &acc, ds, dq, &err), &err);
    CHECK_NEAR(loss, log1p(exp(-2.0)), 1e-6);
    CHECK_NEAR(acc, 1.0, 0);
    /* p1 = softmax weight of class 1; dL/dq = -2[(p0-1)(q-0) + p1(q-2)] */
    double p1 = 1.0 / (1.0 + exp(2.0)), p0 = 1.0 - p1;
    CHECK_NEAR(dq[0], -2.0 * ((p0 - 1.0) * 0.5 + p1 * (0.5 - 2.0)), 1e-6);
    CHECK_NEAR(ds[0], 2.0 * (p0 - 1.0) * 0.5, 1e-6);
    CHECK_NEAR(ds[1], 2.0 * p1 * (0.5 - 2.0), 1e-6);
    lab[0] = 1;
    REQUIRE_OK(esm_protonet_head(s, q, lab, 2, 1, 1, 1, scratch, &loss, &acc, NULL, NULL, &err), &err);
    CHECK_NEAR(acc, 0.0, 0);
    CHECK_NEAR(loss, 2.0 + log1p(exp(-2.0)), 1e-6);
}

/* Central differences in float with h = 1e-3 on a smooth function: threshold 2e-3. */
TEST(protonet_head_gradient)
{
    enum { W = 3, S = 2, Q = 5, D = 4 };
    float es[W * S * D], eq[Q * D], ds[W * S * D], dq[Q * D], scratch[64], loss;
    int lab[Q] = {0, 2, 1, 1, 2};
    REQUIRE(esm_protonet_head_scratch(W, Q, D) <= 64);
    esm_gauss_fill(3, 1, 0, es, W * S * D);
    esm_gauss_fill(3, 2, 0, eq, Q * D);
    esm_err err = {0};
    REQUIRE_OK(esm_protonet_head(es, eq, lab, W, S, Q, D, scratch, &loss, NULL, ds, dq, &err), &err);
    const float h = 1e-3f;
    float *args[2] = {es, eq}, *grads[2] = {ds, dq};
    int lens[2] = {W * S * D, Q * D};
    double worst = 0;
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < lens[a]; i++) {
            float keep = args[a][i], lp, lm;
            args[a][i] = keep + h;
            REQUIRE_OK(esm_protonet_head(es, eq, lab, W, S, Q, D, scratch, &lp, NULL, NULL, NULL, &err), &err);
            args[a][i] = keep - h;
            REQUIRE_OK(esm_protonet_head(es, eq, lab, W, S, Q, D, scratch, &lm, NULL, NULL, NULL, &err), &err);
            args[a][i] = keep;
            double fd = ((double)lp - lm) / (2 * h), e = fabs(fd - grads[a][i]) / (1 + fabs(fd));
            worst = e > worst ? e : worst;
        }
    CHECKF(worst < 2e-3, "worst error %.3g", worst);
}

TEST(protonet_head_stable_and_checked)
{
    /* Distances of 1e6: a naive softmax would overflow to inf/inf. */
    float s[2] = {0.0f, 1000.0f}, q[2] = {1.0f, 999.0f}, scratch[16], loss, acc;
    int lab[2] = {0, 1};
    esm_err err = {0};
    REQUIRE_OK(esm_protonet_head(s, q, lab, 2, 1, 2, 1, scratch, &loss, &acc, NULL, NULL, &err), &err);
    CHECK(isfinite(loss) && loss >= 0.0f && loss < 1e-6f);
    CHECK_NEAR(acc, 1.0, 0);
    lab[1] = 0;
    REQUIRE_OK(esm_protonet_head(s, q, lab, 2, 1, 2, 1, scratch, &loss, &acc, NULL, NULL, &err), &err);
    CHECK_NEAR(loss, (999.0 * 999.0 - 1.0) / 2.0, 1.0); /* mean of 0 and 999^2 - 1^2 */
    lab[1] = 2;
    CHECK(esm_protonet_head(s, q, lab, 2, 1, 2, 1, scratch, &loss, &acc, NULL, NULL, &err) == ESM_EINVAL);
    CHECK(strstr(err.msg, "label 2") != NULL);
    CHECK(esm_protonet_head(s, q, lab, 0, 1, 2, 1, scratch, &loss, &acc, NULL, NULL, &err) == ESM_EINVAL);
    q[0] = NAN;
    lab[1] = 1;
    CHECK(esm_protonet_head(s, q, lab, 2, 1, 2, 1, scratch, &loss, &acc, NULL, NULL, &err) == ESM_ENONFINITE);
}

TEST(protonet_head_exact_far_from_prototypes)
{
    /* Logits near -1.6e9, where float spacing is 128: -(40000 - 10)^2 = -1599200100 rounds to
     * -1599200128. The loss must still come from the exact maximum: ~0 for the nearer
     * prototype, the exact logit gap (40000^2 - 39990^2 = 799900) for the farther one. */
    float s[2] = {0.0f, 10.0f}, q[1] = {40000.0f}, scratch[16], loss = NAN, acc;
    int lab[1] = {1};
    esm_err err = {0};
    REQUIRE_OK(esm_protonet_head(s, q, lab, 2, 1, 1, 1, scratch, &loss, &acc, NULL, NULL, &err), &err);
    CHECKF(loss >= 0.0f && loss < 1e-6f, "loss %g for the nearest prototype", (double)loss);
    lab[0] = 0;
    REQUIRE_OK(esm_protonet_head(s, q, lab, 2, 1, 1, 1, scratch, &loss, &acc, NULL, NULL, &err), &err);
    CHECKF(fabs(loss - 799900.0) < 0.1, "loss %.3f, want 799900", (double)loss);
}

/* The episode loss concatenates support and query into one batch-statistics forward; check
 * it against doing that by hand, and the misuse errors. */
TEST(protonet_loss_matches_manual)
{
    esm_net net;
    esm_err err = {0};
    esm_net_config cfg = {.in_channels = 1, .in_height = 14, .in_width = 14, .width = 8, .depth = 3};
    REQUIRE_OK(esm_net_init(&net, &cfg, &err), &err);
    int way = 3, shot = 2, nq = 6, ns = way * shot, n = ns + nq, labels[6] = {0, 0, 1, 1, 2, 2};
    size_t img = (size_t)net.in_size;
    float *x = malloc((size_t)n * img * sizeof(float)), *emb = malloc((size_t)n * net.emb_dim * sizeof(float));
    float *p = malloc(net.n_params * sizeof(float)), *grad = malloc(net.n_params * sizeof(float));
    float *scratch = malloc(esm_protonet_head_scratch(way, nq, net.emb_dim) * sizeof(float));
    REQUIRE(x && emb && p && grad && scratch);
    esm_gauss_fill(1, 2, 3, x, (size_t)n * img);
    esm_net_init_params(&net, 8, p, NULL);
    esm_net_ws *nws;
    REQUIRE_OK(esm_net_ws_create(&net, n, 0, &nws, &err), &err);
    REQUIRE_OK(esm_net_forward(&net, p, NULL, nws, x, n, ESM_BN_BATCH, emb, &err), &err);
    float want, got, acc, got_g;
    REQUIRE_OK(esm_protonet_head(emb, emb + (size_t)ns * net.emb_dim, labels, way, shot, nq, net.emb_dim, scratch,
                                 &want, NULL, NULL, NULL, &err),
               &err);
    esm_protonet_ws *ws, *fws;
    REQUIRE_OK(esm_protonet_ws_create(&net, way, shot, nq, 1, &ws, &err), &err);
    REQUIRE_OK(esm_protonet_ws_create(&net, way, shot, nq, 0, &fws, &err), &err);
    REQUIRE_OK(esm_protonet_loss(&net, p, NULL, ESM_BN_BATCH, fws, x, way, shot, x + ns * img, labels, nq, &got, &acc,
                                 &err),
               &err);
    CHECK(got == want);
    REQUIRE_OK(esm_protonet_loss_grad(&net, p, NULL, ESM_BN_BATCH, ws, x, way, shot, x + ns * img, labels, nq, &got_g,
                                      &acc, grad, &err),
               &err);
    CHECK(got_g == want);
    CHECK(acc >= 0.0f && acc <= 1.0f);

    CHECK(esm_protonet_loss_grad(&net, p, NULL, ESM_BN_BATCH, fws, x, way, shot, x + ns * img, labels, nq, &got, &acc,
                                 grad, &err) == ESM_EINVAL);
    float run[48];
    REQUIRE(net.n_bn <= 48);
    esm_net_init_params(&net, 8, p, run);
    CHECK(esm_protonet_loss_grad(&net, p, run, ESM_BN_EVAL, ws, x, way, shot, x + ns * img, labels, nq, &got, &acc,
                                 grad, &err) == ESM_EINVAL);
    CHECK(esm_protonet_loss(&net, p, run, ESM_BN_EVAL, fws, x, way + 1, shot, x + ns * img, labels, nq, &got, &acc,
                            &err) == ESM_EINVAL);
    REQUIRE_OK(esm_protonet_loss(&net, p, run, ESM_BN_EVAL, fws, x, way, shot, x + ns * img, labels, nq, &got, &acc,
                                 &err),
               &err);
    esm_protonet_ws_free(ws);
    esm_protonet_ws_free(fws);
    esm_net_ws_free(nws);
    free(x), free(emb), free(p), free(grad), free(scratch);
}
