/* ES state: thread-count invariance, checkpoints, non-finite fitness, O(dim) memory. */
#include <float.h>
#include <omp.h>
#include <string.h>
#include <sys/resource.h>

#include "es_helpers.h"
#include "harness.h"

static const char *const all_strategies[] = {"openai-es", "pgpe", "snes", "sep-cma"};

static esm_es *make_es(esm_tctx *t_, const char *name, size_t dim, int popsize)
{
    esm_err err = {0};
    esm_es_config c;
    if (esm_es_config_init(&c, name, dim, &err) != ESM_OK) {
        esm_tfail(t_, __FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    c.seed = 4242;
    c.sigma0 = 0.3f;
    if (popsize)
        c.popsize = popsize;
    float *x0 = malloc(dim * sizeof *x0);
    for (size_t j = 0; x0 && j < dim; j++)
        x0[j] = 0.5f - (float)(j % 5) * 0.2f;
    esm_es *es = NULL;
    if (!x0 || esm_es_create(&es, &c, x0, &err) != ESM_OK)
        esm_tfail(t_, __FILE__, __LINE__, "create %s: %s", name, err.msg);
    free(x0);
    return es;
}

TEST(es_update_is_thread_count_invariant)
{
    /* 5 chunks of coordinates and a population that does not divide evenly across threads. */
    size_t dim = 4 * 1024 + 77;
    for (int k = 0; k < 4; k++) {
        unsigned char *ref = NULL;
        size_t ref_len = 0;
        int threads[] = {1, 2, 4};
        for (int q = 0; q < 3; q++) {
            omp_set_num_threads(threads[q]);
            esm_es *es = make_es(t_, all_strategies[k], dim, 12);
            REQUIRE(es);
            esm_err err;
            REQUIRE_OK(es_run(es, es_rastrigin, 5, &err), &err);
            size_t len;
            unsigned char *snap = es_snapshot(es, &len);
            REQUIRE(snap);
            if (!ref)
                ref = snap, ref_len = len;
            else {
                CHECKF(len == ref_len && memcmp(ref, snap, len) == 0,
                       "%s: state after 5 generations with %d threads differs from 1 thread", all_strategies[k], threads[q]);
                free(snap);
            }
            esm_es_free(es);
        }
        free(ref);
    }
}

TEST(es_checkpoint_continues_bit_identically)
{
    size_t dim = 1500;
    for (int k = 0; k < 4; k++) {
        esm_err err;
        esm_es *straight = make_es(t_, all_strategies[k], dim, 0);
        esm_es *first = make_es(t_, all_strategies[k], dim, 0);
        REQUIRE(straight && first);
        REQUIRE_OK(es_run(straight, es_rosenbrock, 20, &err), &err);
        REQUIRE_OK(es_run(first, es_rosenbrock, 10, &err), &err);
        size_t len;
        unsigned char *mid = es_snapshot(first, &len);
        REQUIRE(mid);
        CHECK(len == esm_es_state_size(first));
        esm_es_free(first);
        /* A fresh object with another seed and start: load must restore all of it. */
        esm_es_config c;
        REQUIRE_OK(esm_es_config_init(&c, all_strategies[k], dim, &err), &err);
        c.sigma0 = 0.3f;
        c.seed = 1;
        esm_es *resumed;
        REQUIRE_OK(esm_es_create(&resumed, &c, NULL, &err), &err);
        REQUIRE_OK(esm_es_load(resumed, mid, len, &err), &err);
        CHECK(esm_es_generation(resumed) == 10);
        REQUIRE_OK(es_run(resumed, es_rosenbrock, 10, &err), &err);
        size_t la, lb;
        unsigned char *a = es_snapshot(straight, &la), *b = es_snapshot(resumed, &lb);
        REQUIRE(a && b);
        CHECKF(la == lb && memcmp(a, b, la) == 0, "%s: 10 + save/load + 10 generations != 20 straight", all_strategies[k]);
        free(a), free(b), free(mid);
        esm_es_free(straight);
        esm_es_free(resumed);
    }
}

TEST(es_load_rejects_foreign_state)
{
    esm_err err;
    esm_es *snes = make_es(t_, "snes", 64, 0), *cma = make_es(t_, "sep-cma", 64, 0);
    esm_es *cma_dim = make_es(t_, "sep-cma", 65, 0);
    REQUIRE(snes && cma && cma_dim);
    REQUIRE_OK(es_run(cma, es_sphere, 3, &err), &err);
    size_t len, cma_len;
    unsigned char *s = es_snapshot(snes, &len), *keep = es_snapshot(cma, &cma_len);
    REQUIRE(s && keep);
    CHECK(esm_es_load(cma, s, len, &err) == ESM_EMISMATCH);
    CHECK(strstr(err.msg, "snes") && strstr(err.msg, "sep-cma"));
    unsigned char *c = es_snapshot(cma, &len);
    REQUIRE(c);
    CHECK(esm_es_load(cma_dim, c, len, &err) == ESM_EMISMATCH);
    CHECK(strstr(err.msg, "dim") != NULL);
    CHECK(esm_es_load(cma, c, len - 1, &err) == ESM_EFORMAT);
    CHECK(esm_es_load(cma, c, 10, &err) == ESM_EFORMAT);
    c[len / 2] ^= 1;
    CHECK(esm_es_load(cma, c, len, &err) == ESM_ECHECKSUM);
    c[len / 2] ^= 1;
    c[4] = 99; /* the version word follows the magic */
    CHECK(esm_es_load(cma, c, len, &err) == ESM_EVERSION);
    c[0] ^= 0xff;
    CHECK(esm_es_load(cma, c, len, &err) == ESM_EFORMAT);
    CHECK(esm_es_save(cma, c, len - 1, &err) == ESM_EINVAL);
    /* Failed loads leave the object as it was. */
    free(c);
    c = es_snapshot(cma, &len);
    REQUIRE(c);
    CHECK(len == cma_len && memcmp(c, keep, len) == 0);
    free(s), free(c), free(keep);
    esm_es_free(snes), esm_es_free(cma), esm_es_free(cma_dim);
}

TEST(es_nonfinite_fitness_ranks_last)
{
    /* A NaN or inf member must act exactly like the worst finite one: the same state as
     * giving it -FLT_MAX, and nothing non-finite in the centre. */
    for (int k = 0; k < 4; k++) {
        esm_err err;
        esm_es *a = make_es(t_, all_strategies[k], 300, 10), *b = make_es(t_, all_strategies[k], 300, 10);
        REQUIRE(a && b);
        float fa[10], fb[10];
        es_evaluate(a, es_sphere, fa);
        memcpy(fb, fa, sizeof fa);
        fa[3] = NAN, fa[6] = INFINITY, fa[8] = -INFINITY;
        fb[3] = fb[6] = fb[8] = -FLT_MAX;
        esm_es_report ra, rb;
        REQUIRE_OK(esm_es_tell(a, fa, &ra, &err), &err);
        REQUIRE_OK(esm_es_tell(b, fb, &rb, &err), &err);
        CHECK(ra.n_nonfinite == 3 && rb.n_nonfinite == 0);
        CHECK(isfinite(ra.fitness_mean) && isfinite(ra.fitness_max) && ra.fitness_max == rb.fitness_max);
        size_t la, lb;
        unsigned char *sa = es_snapshot(a, &la), *sb = es_snapshot(b, &lb);
        REQUIRE(sa && sb);
        /* pgpe's default centred ranks depend on order only; so do the others. */
        CHECKF(la == lb && memcmp(sa, sb, la) == 0, "%s: non-finite fitness did not act as the worst", all_strategies[k]);
        int finite = 1;
        for (size_t j = 0; j < 300; j++)
            finite &= isfinite(esm_es_mean(a)[j]) != 0;
        CHECK(finite);
        /* All non-finite: an error, and the state does not move. */
        float bad[10];
        for (int i = 0; i < 10; i++)
            bad[i] = i % 2 ? NAN : -INFINITY;
        CHECK(esm_es_tell(a, bad, &ra, &err) == ESM_ENONFINITE);
        CHECK(strstr(err.msg, "NaN") != NULL);
        free(sb);
        sb = es_snapshot(a, &lb);
        REQUIRE(sb);
        CHECK(la == lb && memcmp(sa, sb, la) == 0);
        free(sa), free(sb);
        esm_es_free(a), esm_es_free(b);
    }
}

TEST(es_pgpe_standardised_fitness_ignores_nonfinite)
{
    esm_err err;
    esm_es_config c;
    REQUIRE_OK(esm_es_config_init(&c, "pgpe", 50, &err), &err);
    c.shaping = ESM_ES_SHAPING_ZSCORE;
    c.popsize = 6;
    esm_es *es;
    REQUIRE_OK(esm_es_create(&es, &c, NULL, &err), &err);
    float f[6] = {1, NAN, 3, -INFINITY, 2, 0.5f};
    esm_es_report r;
    REQUIRE_OK(esm_es_tell(es, f, &r, &err), &err);
    CHECK(r.n_nonfinite == 2);
    CHECK(isfinite(r.update_norm) && r.update_norm > 0 && isfinite(r.sigma_mean));
    esm_es_free(es);
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

TEST(es_huge_dim_state_is_linear)
{
    /* 5 million parameters: a dim^2 allocation would be 100 TB. State must be a few floats
     * per parameter, and one ask/tell round must not need more than a few more. */
    size_t dim = 5000000;
    const char *names[] = {"snes", "sep-cma"};
    const double floats_per_dim[] = {2, 4}; /* mean + sigma; mean + c, ps, pc */
    for (int k = 0; k < 2; k++) {
        esm_err err;
        long rss0 = maxrss_kib();
        esm_es *es = make_es(t_, names[k], dim, 4);
        REQUIRE(es);
        size_t bytes = esm_es_state_size(es);
        CHECKF(bytes <= (size_t)(floats_per_dim[k] * dim * sizeof(float)) + 4096,
               "%s: state of %zu bytes for dim %zu", names[k], bytes, dim);
        float part[1000];
        esm_es_member_range(es, 3, dim - 1000, 1000, part);
        CHECK(isfinite(part[999]));
        float fit[4] = {1, 2, 3, 4};
        esm_es_report rep;
        REQUIRE_OK(esm_es_tell(es, fit, &rep, &err), &err);
        CHECK(isfinite(rep.update_norm) && rep.update_norm > 0);
        long grown_kib = maxrss_kib() - rss0;
        if (!ES_SANITIZED) /* shadow memory and quarantine distort RSS under ASan */
            CHECKF(grown_kib * 1024.0 < 3.0 * bytes, "%s: peak RSS grew %ld KiB for a %zu-byte state",
                   names[k], grown_kib, bytes);
        esm_es_free(es);
    }
}
