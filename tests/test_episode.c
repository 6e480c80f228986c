/* The episode sampler: purity in (seed, index), structure, uniformity. */
#include <stdlib.h>
#include <string.h>

#include "esmeta.h"
#include "harness.h"

typedef struct {
    esm_dataset *ds;
    esm_split sp;
    esm_episode ep;
} fixture;

static int setup(esm_tctx *t_, fixture *f, const char *split, esm_episode_shape shape)
{
    esm_err err = {0};
    memset(f, 0, sizeof *f);
    f->ds = esm_test_dataset();
    if (!f->ds)
        return 0;
    if (esm_split_get(f->ds, split, &f->sp, &err) != ESM_OK || esm_episode_check(&f->sp, shape, &err) != ESM_OK ||
        esm_episode_init(&f->ep, f->ds, shape, &err) != ESM_OK) {
        esm_tfail(t_, __FILE__, __LINE__, "%s", err.msg);
        return 0;
    }
    return 1;
}

static void teardown(fixture *f)
{
    esm_episode_free(&f->ep);
    esm_split_free(&f->sp);
    esm_dataset_free(f->ds);
}

static int same_episode(const esm_episode *a, const esm_episode *b)
{
    esm_episode_shape s = a->shape;
    size_t ns = (size_t)s.way * s.shot, nq = (size_t)s.way * s.query, img = (size_t)a->image_size;
    return !memcmp(a->classes, b->classes, sizeof(int) * (size_t)s.way) &&
           !memcmp(a->support_img, b->support_img, sizeof(int) * ns) &&
           !memcmp(a->query_img, b->query_img, sizeof(int) * nq) &&
           !memcmp(a->support, b->support, sizeof(float) * ns * img) &&
           !memcmp(a->query, b->query, sizeof(float) * nq * img);
}

TEST(episode_is_pure_function_of_seed_and_index)
{
    esm_episode_shape shape = {5, 5, 15};
    fixture f;
    REQUIRE(setup(t_, &f, "test", shape));
    esm_episode other;
    esm_err err = {0};
    REQUIRE_OK(esm_episode_init(&other, f.ds, shape, &err), &err);
    /* Out of order and repeated: no hidden sampler state. */
    esm_episode_sample(&f.ep, f.ds, &f.sp, 7, 5);
    esm_episode_sample(&other, f.ds, &f.sp, 7, 3);
    CHECK(!same_episode(&f.ep, &other));
    esm_episode_sample(&other, f.ds, &f.sp, 7, 5);
    CHECK(same_episode(&f.ep, &other));
    esm_episode_sample(&other, f.ds, &f.sp, 8, 5);
    CHECK(!same_episode(&f.ep, &other));
    /* Indices above 2^32 are distinct episodes too. */
    esm_episode_sample(&other, f.ds, &f.sp, 7, 5 + (1ull << 32));
    CHECK(!same_episode(&f.ep, &other));
    esm_episode_free(&other);
    teardown(&f);
}

TEST(episode_structure_distinct_classes_disjoint_images)
{
    esm_episode_shape shape = {20, 5, 15};
    fixture f;
    REQUIRE(setup(t_, &f, "trainval", shape));
    for (uint64_t e = 0; e < 2000; e++) {
        esm_episode_sample_indices(&f.ep, &f.sp, 1, e);
        int bad_class = 0, bad_img = 0, bad_label = 0;
        for (int c = 0; c < 20; c++) {
            bad_class |= f.ep.classes[c] < 0 || f.ep.classes[c] >= f.sp.n_classes;
            for (int d = 0; d < c; d++)
                bad_class |= f.ep.classes[c] == f.ep.classes[d];
            int used[20] = {0};
            for (int i = 0; i < 5; i++) {
                int v = f.ep.support_img[c * 5 + i];
                bad_img |= v < 0 || v >= 20 || used[v]++;
            }
            for (int i = 0; i < 15; i++) {
                int v = f.ep.query_img[c * 15 + i];
                bad_img |= v < 0 || v >= 20 || used[v]++;
                bad_label |= f.ep.query_label[c * 15 + i] != c;
            }
        }
        REQUIREF(!bad_class && !bad_img && !bad_label, "episode %llu: class %d image %d label %d",
                 (unsigned long long)e, bad_class, bad_img, bad_label);
    }
    /* The pixels are the drawings the indices name. */
    esm_episode_sample(&f.ep, f.ds, &f.sp, 1, 0);
    float want[784];
    esm_class k = f.sp.classes[f.ep.classes[3]];
    esm_image_to_float(f.ds, k.chr, f.ep.query_img[3 * 15 + 2], k.rot, want);
    CHECK(!memcmp(want, f.ep.query + (3 * 15 + 2) * 784, sizeof want));
    esm_image_to_float(f.ds, k.chr, f.ep.support_img[3 * 5 + 4], k.rot, want);
    CHECK(!memcmp(want, f.ep.support + (3 * 5 + 4) * 784, sizeof want));
    teardown(&f);
}

static double chi2(const int *counts, int bins, double expected)
{
    double s = 0;
    for (int i = 0; i < bins; i++)
        s += (counts[i] - expected) * (counts[i] - expected) / expected;
    return s;
}

TEST(episode_sampling_is_uniform)
{
    /* Chi-square tests at roughly p = 1e-4 (critical values from the normal approximation
     * mean + 4 sd, sd = sqrt(2 dof), generous for small dof). */
    esm_episode_shape shape = {5, 1, 1};
    fixture f;
    REQUIRE(setup(t_, &f, "val", shape));
    int n_cls = f.sp.n_classes, episodes = 30000;
    int *cls = calloc((size_t)n_cls, sizeof *cls), *slot0 = calloc((size_t)n_cls, sizeof *slot0);
    int img_s[20] = {0}, img_q[20] = {0};
    REQUIRE(cls && slot0);
    for (int e = 0; e < episodes; e++) {
        esm_episode_sample_indices(&f.ep, &f.sp, 99, (uint64_t)e);
        for (int c = 0; c < 5; c++) {
            cls[f.ep.classes[c]]++;
            img_s[f.ep.support_img[c]]++;
            img_q[f.ep.query_img[c]]++;
        }
        slot0[f.ep.classes[0]]++;
    }
    double dof = n_cls - 1, crit = dof + 4 * sqrt(2 * dof);
    double c_all = chi2(cls, n_cls, 5.0 * episodes / n_cls), c_slot = chi2(slot0, n_cls, (double)episodes / n_cls);
    CHECKF(c_all < crit, "class chi2 %.1f >= %.1f", c_all, crit);
    CHECKF(c_slot < crit, "label-slot chi2 %.1f >= %.1f", c_slot, crit);
    double crit20 = 19 + 6 * sqrt(38.0);
    CHECKF(chi2(img_s, 20, 5.0 * episodes / 20) < crit20, "support drawing chi2 %.1f", chi2(img_s, 20, 5.0 * episodes / 20));
    CHECKF(chi2(img_q, 20, 5.0 * episodes / 20) < crit20, "query drawing chi2 %.1f", chi2(img_q, 20, 5.0 * episodes / 20));
    /* And it must be able to fail: a biased histogram is rejected by the same criterion. */
    cls[0] += 200;
    CHECK(chi2(cls, n_cls, 5.0 * episodes / n_cls) >= crit);
    free(cls);
    free(slot0);
    teardown(&f);
}

TEST(episode_bad_shapes_are_rejected)
{
    esm_episode_shape ok = {5, 5, 15};
    fixture f;
    REQUIRE(setup(t_, &f, "test", ok));
    esm_err err = {0};
    esm_episode_shape bad[] = {{0, 5, 5}, {5, 0, 5}, {5, 5, 0}, {-1, 5, 5}, {5, -2, 5}, {1693, 1, 1}, {5, 10, 11}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        CHECKF(esm_episode_check(&f.sp, bad[i], &err) == ESM_EINVAL, "shape %zu accepted", i);
        CHECK(err.msg[0] != 0);
    }
    CHECK(esm_episode_check(&f.sp, (esm_episode_shape){1692, 10, 10}, &err) == ESM_OK);
    teardown(&f);
}
