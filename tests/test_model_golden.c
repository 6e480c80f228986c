/* esmeta against PyTorch: the files in tests/golden/ come from tests/golden/gen_golden.py (float64
 * PyTorch references of the same tiny nets and 3-way episodes). Tolerances are for float32
 * arithmetic: embeddings and losses agree to ~1e-5 relative, gradients to 1e-4 of their
 * largest magnitude (seen: ~1.5e-6; batch norm divides by small variances, which amplifies
 * rounding, so the margin is wide). */
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "golden_file.h"
#include "harness.h"

static double max_abs(const float *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* Largest |got - want| over the array, relative to max(|want|) (floored at 1e-3). */
static double rel_err(const float *got, const float *want, size_t n)
{
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        e = d > e ? d : e;
    }
    double scale = max_abs(want, n);
    return e / (scale > 1e-3 ? scale : 1e-3);
}

typedef struct {
    esm_golden g;
    esm_net net;
    int way, shot, nq;
    int labels[64];
} golden_case;

static int load_case(esm_tctx *t_, const char *file, golden_case *c)
{
    if (esm_golden_load(file, &c->g) != 0)
        return -1;
    size_t n;
    const float *cfg = esm_golden_get(&c->g, "config", &n);
    if (!cfg || n != 8) {
        CHECK(!"config");
        return -1;
    }
    esm_net_config nc = {.in_channels = (int)cfg[0], .in_height = (int)cfg[1], .in_width = (int)cfg[2],
                         .width = (int)cfg[3], .depth = (int)cfg[4]};
    c->way = (int)cfg[5], c->shot = (int)cfg[6], c->nq = (int)cfg[7];
    esm_err err = {0};
    if (esm_net_init(&c->net, &nc, &err) != ESM_OK || c->nq > 64) {
        CHECKF(0, "net init: %s", err.msg);
        return -1;
    }
    const float *lab = esm_golden_get(&c->g, "labels", NULL);
    for (int i = 0; i < c->nq; i++)
        c->labels[i] = (int)lab[i];
    size_t np;
    esm_golden_get(&c->g, "params", &np);
    CHECKF(np == c->net.n_params, "golden has %zu params, esmeta's layout %zu", np, c->net.n_params);
    return np == c->net.n_params ? 0 : -1;
}

static void check_golden(esm_tctx *t_, const char *file)
{
    golden_case c;
    REQUIRE(load_case(t_, file, &c) == 0);
    const esm_net *net = &c.net;
    const float *params = esm_golden_get(&c.g, "params", NULL);
    int n = c.way * c.shot + c.nq;
    float *running = malloc(net->n_bn * sizeof *running);
    float *grad = malloc(net->n_params * sizeof *grad);
    float *emb = malloc((size_t)n * net->emb_dim * sizeof *emb);
    float *x = malloc((size_t)n * net->in_size * sizeof *x);
    REQUIRE(running && grad && emb && x);
    memcpy(running, esm_golden_get(&c.g, "running0", NULL), net->n_bn * sizeof *running);
    const float *sup = esm_golden_get(&c.g, "support", NULL), *qry = esm_golden_get(&c.g, "query", NULL);
    esm_err err = {0};
    esm_protonet_ws *pws;
    REQUIRE_OK(esm_protonet_ws_create(net, c.way, c.shot, c.nq, 1, &pws, &err), &err);

    float loss, acc;
    REQUIRE_OK(esm_protonet_loss_grad(net, params, running, ESM_BN_TRAIN, pws, sup, c.way, c.shot, qry, c.labels,
                                      c.nq, &loss, &acc, grad, &err),
               &err);
    CHECK_NEAR(loss, esm_golden_get(&c.g, "loss", NULL)[0], 1e-4 * (1 + fabs(loss)));
    CHECK_NEAR(acc, esm_golden_get(&c.g, "acc", NULL)[0], 1e-6);
    double ge = rel_err(grad, esm_golden_get(&c.g, "grad", NULL), net->n_params);
    CHECKF(ge < 1e-4, "gradient differs from PyTorch by %.3g of its largest entry", ge);
    double re = rel_err(running, esm_golden_get(&c.g, "running1", NULL), net->n_bn);
    CHECKF(re < 1e-5, "running statistics differ from PyTorch's by %.3g", re);

    /* The embedding of the same train-mode forward, through the net API directly. */
    memcpy(x, sup, (size_t)c.way * c.shot * net->in_size * sizeof *x);
    memcpy(x + (size_t)c.way * c.shot * net->in_size, qry, (size_t)c.nq * net->in_size * sizeof *x);
    esm_net_ws *ws;
    REQUIRE_OK(esm_net_ws_create(net, n, 0, &ws, &err), &err);
    REQUIRE_OK(esm_net_forward(net, params, NULL, ws, x, n, ESM_BN_BATCH, emb, &err), &err);
    double ee = rel_err(emb, esm_golden_get(&c.g, "emb_train", NULL), (size_t)n * net->emb_dim);
    CHECKF(ee < 1e-5, "train-mode embedding differs from PyTorch's by %.3g", ee);

    /* Eval mode with the updated running statistics. */
    REQUIRE_OK(esm_net_forward(net, params, running, ws, x, n, ESM_BN_EVAL, emb, &err), &err);
    double ev = rel_err(emb, esm_golden_get(&c.g, "emb_eval", NULL), (size_t)n * net->emb_dim);
    CHECKF(ev < 1e-5, "eval-mode embedding differs from PyTorch's by %.3g", ev);
    if (getenv("ESM_TEST_VERBOSE"))
        fprintf(stderr, "    relative errors: grad %.3g, running %.3g, emb train %.3g, emb eval %.3g\n", ge, re, ee, ev);
    REQUIRE_OK(esm_protonet_loss(net, params, running, ESM_BN_EVAL, pws, sup, c.way, c.shot, qry, c.labels, c.nq,
                                 &loss, &acc, &err),
               &err);
    CHECK_NEAR(loss, esm_golden_get(&c.g, "loss_eval", NULL)[0], 1e-4 * (1 + fabs(loss)));
    CHECK_NEAR(acc, esm_golden_get(&c.g, "acc_eval", NULL)[0], 1e-6);

    /* torch.optim.Adam, 3 steps from params with gradients g*(1, -0.5, 2), lr 0.01, decay 0.01. */
    esm_adam opt;
    esm_adam_config ac = esm_adam_config_default(0.01f);
    ac.weight_decay = 0.01f;
    REQUIRE_OK(esm_adam_init(&opt, net->n_params, &ac, &err), &err);
    const float *g_ref = esm_golden_get(&c.g, "grad", NULL);
    float *p = malloc(net->n_params * sizeof *p), *g = malloc(net->n_params * sizeof *g);
    REQUIRE(p && g);
    memcpy(p, params, net->n_params * sizeof *p);
    const float scale[3] = {1.0f, -0.5f, 2.0f};
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < net->n_params; i++)
            g[i] = g_ref[i] * scale[s];
        esm_adam_step(&opt, p, g);
    }
    const float *want = esm_golden_get(&c.g, "adam3", NULL);
    double worst = 0.0;
    for (size_t i = 0; i < net->n_params; i++) {
        double d = fabs((double)p[i] - want[i]);
        worst = d > worst ? d : worst;
    }
    /* Adam moves each parameter by ~lr per step; float rounding is far below 1e-5 of that. */
    CHECKF(worst < 1e-6, "Adam after 3 steps differs from torch.optim.Adam by %.3g", worst);
    CHECK(opt.step == 3);

    esm_adam_free(&opt);
    free(p), free(g);
    esm_net_ws_free(ws);
    esm_protonet_ws_free(pws);
    free(running), free(grad), free(emb), free(x);
    esm_golden_free(&c.g);
}

TEST(model_golden_conv4_w8_28)
{
    check_golden(t_, "conv4_w8_28.bin");
}

TEST(model_golden_conv2_w5_2x10x13)
{
    check_golden(t_, "conv2_w5_2x10x13.bin");
}
