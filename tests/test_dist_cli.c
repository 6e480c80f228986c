/* Distributed training through mpirun: bit-identity across rank counts, resumes with another
 * rank count, a killed rank, diverged ranks, and the bytes each generation puts on the wire.
 * Loopback TCP only and one thread per rank, so CI (2 cores, root, no network) can run them. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "esmeta.h"
#include "harness.h"

#define TINY_ES "--trainer es --width 8 --depth 2 --way 5 --shot 1 --query 2 --pop 6 --seed 3 --quiet"
#define TINY_BP "--width 8 --depth 2 --way 5 --shot 1 --query 2 --seed 3 --quiet"
/* Leaks inside Open MPI's own initialisation are not ours; the serial tests keep leak checks. */
#define MPI_ENV "OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 " \
                "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0"
#define MPI_FLAGS "--oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"

static int have_mpirun(void) { return system("command -v mpirun >/dev/null 2>&1") == 0; }

#define NEED_MPIRUN()                                                                                       \
    REQUIREF(have_mpirun(), "mpirun is not installed: the distributed tests need Open MPI's openmpi-bin "   \
             "(scripts/install-deps installs it)")

/* "mpirun -np n ..." with its command line built from fmt; stderr goes to TMP/mpirun.err and the
 * run is bounded so that a hang fails the test instead of the suite. Returns the exit status. */
static int mpirun(int n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int mpirun(int n, const char *fmt, ...)
{
    char args[8192], cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "env " MPI_ENV " timeout -k 5 180 mpirun " MPI_FLAGS " -np %d %s %s >%s/mpirun.out "
             "2>%s/mpirun.err", n, esm_test_cli(), args, esm_test_tmpdir(), esm_test_tmpdir());
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void show_stderr(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "tail -n 8 %s/mpirun.err >&2", esm_test_tmpdir());
    if (system(cmd) != 0)
        fputs("    (no stderr)\n", stderr);
}

static int serial(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int serial(const char *fmt, ...)
{
    char args[8192], err[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    setenv("OMP_NUM_THREADS", "1", 1);
    int rc = esm_test_run_cli(args, NULL, 0, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "    esmeta %s -> %d: %s\n", args, rc, err);
    return rc;
}

static int same_ckpt(const char *dir_a, const char *dir_b)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/%s/checkpoint.bin' '%s/%s/checkpoint.bin'", esm_test_tmpdir(), dir_a,
             esm_test_tmpdir(), dir_b);
    return system(cmd) == 0;
}

/* Lines of RUN_DIR/metrics.jsonl (RUN_DIR below this test's scratch folder) containing needle. */
static int count_lines(const char *dir, const char *needle)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", esm_test_tmpdir(), dir);
    return esm_test_count_lines(path, needle);
}

static int file_has(const char *name, const char *needle)
{
    char path[4200], buf[16384];
    snprintf(path, sizeof path, "%s/%s", esm_test_tmpdir(), name);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

TEST(dist_es_is_bit_identical_for_1_to_4_ranks)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    /* P = 6 over 4 ranks is 2,2,1,1; 12 generations pass the rank check at 10 and two saves. */
    const char *run = "train --data %s " TINY_ES " --generations 12 --checkpoint-every 5 --out %s/np%d";
    REQUIRE(serial(run, cache, tmp, 0) == 0);
    for (int n = 1; n <= 4; n++) {
        int rc = mpirun(n, run, cache, tmp, n);
        if (rc != 0)
            show_stderr();
        REQUIREF(rc == 0, "%d ranks: exit %d", n, rc);
        char name[16];
        snprintf(name, sizeof name, "np%d", n);
        CHECKF(same_ckpt("np0", name), "%d ranks end with other bits than one process", n);
        CHECK(count_lines(name, "\"generation\":") == 12);
        CHECKF(file_has("mpirun.out", "\"ranks\":") && file_has("mpirun.out", "\"steps\":12"), "%d ranks: one summary",
               n);
    }
    /* Threads inside the ranks change nothing either (slices of 2 and 1 members on 2 threads). */
    char threaded[8192];
    snprintf(threaded, sizeof threaded, "%s --threads 2", run);
    REQUIRE(mpirun(4, threaded, cache, tmp, 5) == 0);
    CHECK(same_ckpt("np0", "np5"));
}

TEST(dist_es_more_ranks_than_members)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    /* P = 2 over 3 ranks: the last rank scores nobody but still follows the centre. */
    const char *run = "train --data %s " TINY_ES " --pop 2 --generations 4 --out %s/np%d";
    REQUIRE(serial(run, cache, tmp, 0) == 0);
    int rc = mpirun(3, run, cache, tmp, 3);
    if (rc != 0)
        show_stderr();
    REQUIRE(rc == 0);
    CHECK(same_ckpt("np0", "np3"));
}

TEST(dist_resume_with_another_rank_count)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    REQUIRE(serial("train --data %s " TINY_ES " --generations 12 --out %s/straight", cache, tmp) == 0);
    REQUIRE(mpirun(2, "train --data %s " TINY_ES " --generations 5 --out %s/split", cache, tmp) == 0);
    int rc = mpirun(3, "train --data %s --resume %s/split --generations 9 --quiet", cache, tmp);
    if (rc == 0)
        rc = serial("train --data %s --resume %s/split --generations 12 --quiet", cache, tmp);
    if (rc != 0)
        show_stderr();
    REQUIRE(rc == 0);
    CHECK(same_ckpt("straight", "split"));
    CHECK(count_lines("split", "\"generation\":") == 12);
    /* A failure only rank 0 sees (--out holds a run already) must end the job, not hang it. */
    rc = mpirun(2, "train --data %s " TINY_ES " --generations 3 --out %s/straight", cache, tmp);
    CHECK(rc != 0 && file_has("mpirun.err", "already holds a run"));
    CHECK(same_ckpt("straight", "split"));
}

static int all_finite_model(const esm_model *m)
{
    int ok = 1;
    for (size_t i = 0; i < m->net.n_params; i++)
        ok &= isfinite(m->params[i]);
    for (size_t i = 0; i < m->net.n_bn; i++)
        ok &= isfinite(m->bn_running[i]);
    return ok;
}

TEST(dist_backprop_is_bit_identical_across_rank_counts)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    /* 3 episodes a step: 2 ranks take 2 and 1, 4 ranks leave one rank idle. */
    const char *run = "train --data %s " TINY_BP " --episodes 4 --episodes-per-step 3 --out %s/np%d";
    REQUIRE(serial(run, cache, tmp, 0) == 0);
    for (int n = 2; n <= 4; n += 2) {
        int rc = mpirun(n, run, cache, tmp, n);
        if (rc != 0)
            show_stderr();
        REQUIREF(rc == 0, "%d ranks: exit %d", n, rc);
        char name[16];
        snprintf(name, sizeof name, "np%d", n);
        CHECKF(same_ckpt("np0", name), "%d ranks end with other bits than one process", n);
    }
    /* A non-finite step stops every rank alike; rank 0 keeps the last good state. */
    int rc = mpirun(2, "train --data %s " TINY_BP " --episodes 20 --episodes-per-step 2 --lr 1e30 --out %s/nan", cache,
                    tmp);
    CHECK(rc != 0 && file_has("mpirun.err", "not finite"));
    char ckpt[4300];
    snprintf(ckpt, sizeof ckpt, "%s/nan/checkpoint.bin", tmp);
    esm_model m;
    esm_err err = {0};
    REQUIRE_OK(esm_model_load(ckpt, &m, &err), &err);
    CHECK(all_finite_model(&m));
    esm_model_free(&m);
    /* More episodes a step are really a different run. */
    REQUIRE(serial("train --data %s " TINY_BP " --episodes 4 --out %s/one", cache, tmp) == 0);
    CHECK(!same_ckpt("np0", "one"));
}

/* comm_bytes of every generation line of a run, in order; returns how many. */
static int comm_bytes(const char *dir, long long *out, int cap)
{
    char path[4200], line[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", esm_test_tmpdir(), dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f) && n < cap) {
        const char *p = strstr(line, "\"comm_bytes\":");
        if (p)
            out[n++] = atoll(p + 13);
    }
    if (f)
        fclose(f);
    return n;
}

TEST(dist_es_unsharded_sends_o_pop_bytes_whatever_the_model_size)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    const char *run = "train --data %s " TINY_ES " --generations 11 --checkpoint-every 0 --width %d --pop %d "
                      "--shard-update off --out %s/%s";
    REQUIRE(mpirun(2, run, cache, 8, 6, tmp, "w8") == 0);
    REQUIRE(mpirun(2, run, cache, 32, 6, tmp, "w32") == 0);
    REQUIRE(mpirun(2, run, cache, 8, 12, tmp, "p12") == 0);
    long long a[16], b[16], c[16];
    REQUIRE(comm_bytes("w8", a, 16) == 11 && comm_bytes("w32", b, 16) == 11 && comm_bytes("p12", c, 16) == 11);
    for (int g = 0; g < 11; g++) {
        CHECKF(a[g] == b[g], "generation %d: width 8 sent %lld bytes, width 32 %lld", g + 1, a[g], b[g]);
        /* Rank 0 of 2 holds P/2 members: 3 floats each and a status, plus the 8-byte stop flag
         * (and the 16-byte state check every 10 generations). Unsharded, parameters never travel. */
        long long expect6 = 4 * (1 + 3 * 3) + 8 + (g + 1 == 10 ? 16 : 0);
        long long expect12 = 4 * (1 + 3 * 6) + 8 + (g + 1 == 10 ? 16 : 0);
        CHECKF(a[g] == expect6, "generation %d: %lld bytes, expected %lld", g + 1, a[g], expect6);
        CHECKF(c[g] == expect12, "generation %d with P = 12: %lld bytes, expected %lld", g + 1, c[g], expect12);
    }
    /* The automatic choice leaves these small nets unsharded: the same bytes. */
    REQUIRE(mpirun(2, "train --data %s " TINY_ES " --generations 11 --checkpoint-every 0 --width 8 --out %s/auto",
                   cache, tmp) == 0);
    REQUIRE(comm_bytes("auto", b, 16) == 11);
    CHECK(!memcmp(a, b, 11 * sizeof *a));
    /* And the serial run puts nothing on a wire. */
    REQUIRE(serial(run, cache, 8, 6, tmp, "serial") == 0);
    REQUIRE(comm_bytes("serial", a, 16) == 11);
    CHECK(a[0] == 0 && a[10] == 0);
}

/* The parameter count of a run's model. */
static size_t run_params(const char *dir)
{
    char ckpt[4300];
    snprintf(ckpt, sizeof ckpt, "%s/%s/checkpoint.bin", esm_test_tmpdir(), dir);
    esm_model m;
    esm_err err = {0};
    if (esm_model_load(ckpt, &m, &err) != ESM_OK)
        return 0;
    size_t n = m.net.n_params;
    esm_model_free(&m);
    return n;
}

/* The sharded update's contract (docs/RESULTS.md): per generation, rank 0 of n sends its members'
 * block and the stop flag as before, plus its D0 coordinates' noise sums, 8 bytes each, for each of
 * the A sums the strategy uses (openai-es 1, pgpe 2); every 10 generations the 16-byte state check.
 * Every block goes to n - 1 others. */
TEST(dist_es_sharded_sends_the_documented_bytes)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    struct { const char *strategy; int sums; } cases[] = {{"openai-es", 1}, {"pgpe", 2}};
    for (int k = 0; k < 2; k++) {
        char dir[32];
        snprintf(dir, sizeof dir, "bytes-%s", cases[k].strategy);
        REQUIRE(mpirun(3, "train --data %s " TINY_ES " --strategy %s --width 32 --generations 11 --checkpoint-every 0 "
                       "--shard-update on --out %s/%s", cache, cases[k].strategy, tmp, dir) == 0);
        long long got[16];
        REQUIRE(comm_bytes(dir, got, 16) == 11);
        size_t dim = run_params(dir), b, e;
        REQUIRE(dim > 2 * 1024);
        esm_es_shard_range(dim, 0, 3, &b, &e);
        long long d0 = (long long)(e - b), others = 2;
        for (int g = 0; g < 11; g++) {
            long long expect = others * (4 * (1 + 3 * 2) + 8 + 8 * d0 * cases[k].sums);
            if (g + 1 == 10)
                expect += others * 16;
            CHECKF(got[g] == expect, "%s generation %d: %lld bytes, expected %lld (D = %zu, D0 = %lld)",
                   cases[k].strategy, g + 1, got[g], expect, dim, d0);
        }
    }
}

TEST(dist_es_sharded_update_is_bit_identical_for_1_to_4_ranks)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    /* Width 32 has about 9,800 parameters: 3 and 4 ranks take uneven shards that cut the update's
     * 1024-parameter chunks. Adam (openai-es) and ClipUp with per-parameter sigma (pgpe); 12
     * generations pass the state check at 10 and two saves. */
    const char *strategies[] = {"openai-es", "pgpe"};
    for (int k = 0; k < 2; k++) {
        const char *run = "train --data %s " TINY_ES " --width 32 --strategy %s --generations 12 --checkpoint-every 5 "
                          "--shard-update on --out %s/%s-np%d";
        const char *s = strategies[k];
        REQUIRE(serial(run, cache, s, tmp, s, 0) == 0);
        for (int n = 1; n <= 4; n++) {
            int rc = mpirun(n, run, cache, s, tmp, s, n);
            if (rc != 0)
                show_stderr();
            REQUIREF(rc == 0, "%s, %d ranks: exit %d", s, n, rc);
            char a[64], b[64];
            snprintf(a, sizeof a, "%s-np0", s);
            snprintf(b, sizeof b, "%s-np%d", s, n);
            CHECKF(same_ckpt(a, b), "%s, %d sharded ranks end with other bits than one process", s, n);
            CHECK(count_lines(b, "\"generation\":") == 12);
        }
    }
    /* Threads inside sharded ranks, and a sharded run resumed sharded over another rank count. */
    const char *run = "train --data %s " TINY_ES " --width 32 --generations %d --shard-update on --out %s/%s";
    REQUIRE(mpirun(4, "train --data %s " TINY_ES " --width 32 --generations 12 --checkpoint-every 5 --shard-update on "
                   "--threads 2 --out %s/threads", cache, tmp) == 0);
    CHECK(same_ckpt("openai-es-np0", "threads"));
    REQUIRE(mpirun(2, run, cache, 5, tmp, "split") == 0);
    int rc = mpirun(3, "train --data %s --resume %s/split --generations 9 --shard-update on --quiet", cache, tmp);
    if (rc == 0)
        rc = serial("train --data %s --resume %s/split --generations 12 --quiet", cache, tmp);
    if (rc != 0)
        show_stderr();
    REQUIRE(rc == 0);
    CHECK(same_ckpt("openai-es-np0", "split"));
    /* Ranks that disagree about sharding stop before the first step instead of hanging. */
    char other[8192];
    snprintf(other, sizeof other, "train --data %s " TINY_ES " --generations 3 --out %s/mixed --shard-update on : "
             "-np 1 %s train --data %s " TINY_ES " --generations 3 --out %s/mixed --shard-update off", cache, tmp,
             esm_test_cli(), cache, tmp);
    rc = mpirun(1, "%s", other);
    CHECKF(rc != 0 && file_has("mpirun.err", "different update sharding"), "exit %d", rc);
}

/* "key":number of the last generation line of a run; -1 if absent. */
static double last_number(const char *dir, const char *key)
{
    char path[4200], line[4096], pat[64];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", esm_test_tmpdir(), dir);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    FILE *f = fopen(path, "r");
    double v = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, pat);
        if (p && strstr(line, "\"generation\":"))
            v = atof(p + strlen(pat));
    }
    if (f)
        fclose(f);
    return v;
}

TEST(dist_es_metrics_say_where_the_time_went)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    const char *run = "train --data %s " TINY_ES " --width 32 --generations 3 --shard-update on --out %s/%s";
    REQUIRE(mpirun(2, run, cache, tmp, "timed") == 0);
    REQUIRE(serial(run, cache, tmp, "timed1") == 0);
    const char *dirs[] = {"timed", "timed1"};
    for (int k = 0; k < 2; k++) {
        CHECKF(count_lines(dirs[k], "\"eval_s\":") == 3 && count_lines(dirs[k], "\"update_s\":") == 3 &&
               count_lines(dirs[k], "\"comm_s\":") == 3, "%s: a generation line lacks a time", dirs[k]);
        double ev = last_number(dirs[k], "eval_s"), up = last_number(dirs[k], "update_s");
        double comm = last_number(dirs[k], "comm_s"), el = last_number(dirs[k], "elapsed_s");
        CHECKF(ev > 0 && up >= 0 && comm >= 0 && ev + up + comm <= el, "%s: eval_s %g update_s %g comm_s %g "
               "elapsed_s %g", dirs[k], ev, up, comm, el);
        CHECKF(k == 0 || comm == 0, "one process spent %g s in collectives", comm);
    }
}

/* A copy of the cache at path whose drawings are all inverted: the same characters and splits
 * (so the same configuration), other pixels. */
static int write_inverted_cache(const char *from, const char *to)
{
    esm_dataset *ds = NULL;
    esm_err err = {0};
    if (esm_cache_read(from, &ds, &err) != ESM_OK)
        return 0;
    size_t n = ds->n_total * (size_t)ds->channels * ds->height * ds->width;
    for (size_t i = 0; i < n; i++)
        ds->pixels[i] = (uint8_t)(255 - ds->pixels[i]);
    int ok = esm_cache_write(ds, to, &err) == ESM_OK;
    esm_dataset_free(ds);
    return ok;
}

TEST(dist_diverged_ranks_stop_with_a_clear_error)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    /* Two programs (MPMD) with the same options on different pixels: equal at the start, apart
     * after one generation, caught by the check every 10 generations. */
    char inverted[4200], other[8192];
    snprintf(inverted, sizeof inverted, "%s/inverted.esmc", tmp);
    REQUIRE(write_inverted_cache(cache, inverted));
    snprintf(other, sizeof other, "train --data %s " TINY_ES " --generations 30 --out %s/div : -np 1 %s "
             "train --data %s " TINY_ES " --generations 30 --out %s/div", cache, tmp, esm_test_cli(), inverted, tmp);
    int rc = mpirun(1, "%s", other);
    CHECKF(rc != 0, "diverged ranks exited %d", rc);
    CHECKF(file_has("mpirun.err", "after step 10") && file_has("mpirun.err", "hold different states"),
           "no divergence message");
    CHECK(count_lines("div", "\"generation\":") == 9); /* the 10th is where they were caught */
}

TEST(dist_ranks_with_other_options_or_binaries_stop_at_start)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    /* Learning rates that differ would only show in the state after a generation. */
    char other[8192];
    snprintf(other, sizeof other, "train --data %s " TINY_ES " --generations 30 --out %s/lr --lr 0.002 : -np 1 %s "
             "train --data %s " TINY_ES " --generations 30 --out %s/lr --lr 0.003", cache, tmp, esm_test_cli(), cache,
             tmp);
    int rc = mpirun(1, "%s", other);
    CHECKF(rc != 0 && file_has("mpirun.err", "different configurations"), "exit %d", rc);
    CHECK(count_lines("lr", "\"generation\":") == 0);
    /* Another seed: caught by the same check, before the state comparison would. */
    snprintf(other, sizeof other, "train --data %s " TINY_ES " --generations 3 --out %s/seed : -np 1 %s "
             "train --data %s " TINY_ES " --generations 3 --out %s/seed --seed 9", cache, tmp, esm_test_cli(), cache,
             tmp);
    rc = mpirun(1, "%s", other);
    CHECK(rc != 0 && file_has("mpirun.err", "different configurations"));
    /* The same program with one byte appended: it still runs, but it is another binary. */
    char copy[4200], cmd[9000];
    snprintf(copy, sizeof copy, "%s/esmeta-other", tmp);
    snprintf(cmd, sizeof cmd, "cp %s %s && printf x >> %s", esm_test_cli(), copy, copy);
    REQUIRE(system(cmd) == 0);
    snprintf(other, sizeof other, "train --data %s " TINY_ES " --generations 3 --out %s/exe : -np 1 %s "
             "train --data %s " TINY_ES " --generations 3 --out %s/exe", cache, tmp, copy, cache, tmp);
    rc = mpirun(1, "%s", other);
    CHECKF(rc != 0 && file_has("mpirun.err", "different esmeta executables"), "exit %d", rc);
    CHECK(count_lines("exe", "\"generation\":") == 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* /proc/<pid>/<what> with NULs turned into newlines (so strstr sees every entry). */
static size_t read_proc(const char *pid, const char *what, char *buf, size_t cap)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/%s", pid, what);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 2, f) : 0;
    if (f)
        fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = '\n';
    buf[n] = '\n', buf[n + 1] = 0;
    return n;
}

/* The pid of the rank process whose command line mentions tag, or 0 (reads /proc: no procps). */
static pid_t find_rank(const char *tag, int rank)
{
    char want[64], cmdline[8192];
    static char env[1 << 16];
    snprintf(want, sizeof want, "\nOMPI_COMM_WORLD_RANK=%d\n", rank);
    DIR *d = opendir("/proc");
    pid_t found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (!read_proc(e->d_name, "cmdline", cmdline, sizeof cmdline) || !strstr(cmdline, tag))
            continue;
        env[0] = '\n';
        read_proc(e->d_name, "environ", env + 1, sizeof env - 1);
        if (strstr(env, want))
            found = (pid_t)atol(e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

/* Waits up to limit seconds for child; its wait status, or -1 if it is still running. */
static int wait_bounded(pid_t child, double limit)
{
    double t0 = now_s();
    int st = 0;
    while (now_s() - t0 < limit) {
        if (waitpid(child, &st, WNOHANG) == child)
            return st;
        usleep(50000);
    }
    return -1;
}

TEST(dist_killed_rank_ends_the_job_and_the_checkpoint_resumes)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    char dir[4200], cmd[16384];
    snprintf(dir, sizeof dir, "%s/killed", tmp);
    snprintf(cmd, sizeof cmd, "exec env " MPI_ENV " mpirun " MPI_FLAGS " -np 2 %s train --data %s " TINY_ES
             " --generations 1000000 --checkpoint-every 1 --shard-update on --out %s >/dev/null 2>%s/mpirun.err",
             esm_test_cli(), cache, dir, tmp);
    fflush(stdout), fflush(stderr);
    pid_t job = fork();
    REQUIRE(job >= 0);
    if (job == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* A few generations in (and so mid-way through saving at some point), kill -9 rank 1. The
     * update is sharded, so the survivor waits in its collectives too. */
    double t0 = now_s();
    while (count_lines("killed", "\"generation\":") < 3 && now_s() - t0 < 60)
        usleep(20000);
    pid_t victim = find_rank(dir, 1);
    if (victim > 0)
        kill(victim, SIGKILL);
    int st = wait_bounded(job, 20);
    if (st == -1) { /* a hang: clean up what we started, then fail */
        pid_t r0 = find_rank(dir, 0);
        if (r0 > 0)
            kill(r0, SIGKILL);
        kill(job, SIGKILL);
        waitpid(job, NULL, 0);
    }
    REQUIREF(victim > 0, "rank 1 was never found running");
    REQUIREF(st != -1, "the job was still running 20 s after rank 1 was killed");
    CHECKF(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "the job exited 0 although a rank was killed");
    CHECKF(file_has("mpirun.err", "rank 1") && file_has("mpirun.err", "signal 9"), "mpirun did not say what died");
    /* The checkpoint left behind loads and resumes (alone this time) to the bits of a straight
     * run; 300 generations is far beyond where the kill landed. */
    char ckpt[4300];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.bin", dir);
    esm_model m;
    esm_err err = {0};
    REQUIRE_OK(esm_model_load(ckpt, &m, &err), &err);
    esm_model_free(&m);
    int done = count_lines("killed", "\"generation\":");
    REQUIREF(done < 300, "the run got to generation %d before it was killed", done);
    REQUIRE(serial("train --data %s --resume %s --generations 300 --quiet", cache, dir) == 0);
    REQUIRE(serial("train --data %s " TINY_ES " --generations 300 --out %s/straight", cache, tmp) == 0);
    CHECK(same_ckpt("killed", "straight"));
}

/* A rank whose share is a single member scores it on one thread with its other threads idle; at
 * width 64 a threaded BLAS would split that member's GEMMs and change its bits. */
TEST(dist_es_rank_with_one_member_matches_one_process)
{
    NEED_MPIRUN();
    const char *cache = esm_test_cache(), *tmp = esm_test_tmpdir();
    REQUIRE(cache);
    const char *run = "train --data %s --trainer es --width 64 --depth 4 --way 5 --shot 5 --query 5 --pop 2 --seed 3 "
                      "--quiet --generations 3 --threads %d --out %s/%s";
    REQUIRE(serial(run, cache, 1, tmp, "one") == 0);
    int rc = mpirun(2, run, cache, 2, tmp, "np2");
    if (rc != 0)
        show_stderr();
    REQUIREF(rc == 0, "2 ranks: exit %d", rc);
    CHECKF(same_ckpt("one", "np2"), "2 ranks of one member each end with other bits than one process");
}
