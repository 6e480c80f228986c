/* Adam against a hand computation; the comparison with torch.optim.Adam is in
 * test_model_golden.c. */
#include "esmeta.h"
#include "harness.h"

TEST(adam_hand_example)
{
    /* One parameter, constant gradient 0.5, lr 0.1: with bias correction the first step
     * moves by lr * g / (|g| + eps) = 0.1, and so does every later step. */
    esm_adam opt;
    esm_err err = {0};
    esm_adam_config c = esm_adam_config_default(0.1f);
    CHECK(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f && c.weight_decay == 0.0f);
    REQUIRE_OK(esm_adam_init(&opt, 1, &c, &err), &err);
    CHECK(esm_adam_state_floats(7) == 14);
    float p = 1.0f, g = 0.5f;
    esm_adam_step(&opt, &p, &g);
    CHECK_NEAR(p, 0.9, 1e-6);
    CHECK_NEAR(opt.state[0], 0.05, 1e-7);   /* m */
    CHECK_NEAR(opt.state[1], 0.00025, 1e-8); /* v; 1 - 0.999f is 1e-3 to 1.3e-5 */
    esm_adam_step(&opt, &p, &g);
    CHECK_NEAR(p, 0.8, 1e-6);
    CHECK(opt.step == 2);
    esm_adam_free(&opt);
    c.beta2 = 1.0f;
    CHECK(esm_adam_init(&opt, 1, &c, &err) == ESM_EINVAL);
    c = esm_adam_config_default(0.0f);
    CHECK(esm_adam_init(&opt, 1, &c, &err) == ESM_EINVAL);
}
