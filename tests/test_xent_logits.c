/* The query cross-entropy that the host head and the CUDA head share (src/meta/xent_logits.h),
 * tested on the CPU, so the device's log-sum-exp is checked on machines without a GPU. */
#include <math.h>

#include "harness.h"
#include "meta/xent_logits.h"

/* Loss of `label` over `way` exact logits, through take + lse as both heads call them. */
static double xent(const double *logit, int way, int label, int *best)
{
    float row[8];
    esm_xent_acc a = esm_xent_start();
    for (int c = 0; c < way; c++)
        esm_xent_take(&a, row, c, logit[c], label);
    *best = a.best;
    return esm_xent_lse(&a, row, way) - a.label;
}

TEST(xent_logits_hand_example)
{
    /* logits 0 and -2: loss of class 0 is log(1 + e^-2), of class 1 is 2 + log(1 + e^-2). */
    double l[2] = {0.0, -2.0};
    int best;
    double l0 = xent(l, 2, 0, &best);
    CHECKF(fabs(l0 - log1p(exp(-2.0))) < 1e-7, "loss %.9f", l0);
    CHECK(best == 0);
    double l1 = xent(l, 2, 1, &best);
    CHECKF(fabs(l1 - (2.0 + log1p(exp(-2.0)))) < 1e-7, "loss %.9f", l1);
}

TEST(xent_logits_best_class_counts_exactly_one_far_away)
{
    /* Logits near -1e8, where float spacing is 8: -100000003 rounds to -100000000, so the best
     * class's float-rounded term would be e^3 and its loss ~3, not ~0.
     * With the best class taken as exactly 1 the loss is log(1 + e^-gap), finite and >= 0. */
    double l[3] = {-100000003.0, -100000403.0, -100000803.0};
    int best;
    double near = xent(l, 3, 0, &best);
    CHECK(best == 0);
    CHECKF(near >= 0.0 && near < 1e-100, "loss %g for the nearest class", near);
    double far = xent(l, 3, 2, &best);
    CHECKF(fabs(far - 800.0) < 8.0 + 1e-9, "loss %.3f, want 800 to within the float spacing", far);
    CHECK(isfinite(far));
}

TEST(xent_logits_ties_go_to_the_first_class)
{
    double l[4] = {-1.0, -0.5, -0.5, -3.0};
    int best;
    double loss = xent(l, 4, 2, &best);
    CHECK(best == 1);
    CHECKF(loss > 0.0 && isfinite(loss), "loss %g", loss);
}
