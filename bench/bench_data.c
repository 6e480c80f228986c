/* Data-path timings: raw Omniglot -> dataset (what `esmeta prepare` does) and cache -> dataset.
 * usage: build/bench_data DATA_DIR [REPEATS]; prints one JSON line per measurement. */
#define _GNU_SOURCE
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "esmeta.h"

static void report(const char *what, double *t, int n, int threads)
{
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    printf("{\"bench\":\"%s\",\"threads\":%d,\"repeats\":%d,\"median_s\":%.4f,\"min_s\":%.4f,\"max_s\":%.4f}\n", what,
           threads, n, t[n / 2], t[0], t[n - 1]);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA_DIR [REPEATS]\n", argv[0]);
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 100)
        reps = 5;
    double t[100];
    esm_err err = {0};
    const char *cache = "/tmp/esmeta-bench.esmc";
    for (int threads = 1; threads <= omp_get_num_procs(); threads *= 2) {
        esm_load_opts o = esm_load_opts_default();
        o.threads = threads;
        for (int i = 0; i < reps; i++) {
            esm_dataset *ds;
            double t0 = now_s();
            if (esm_dataset_load(argv[1], &o, &ds, &err) != ESM_OK || esm_cache_write(ds, cache, &err) != ESM_OK) {
                fprintf(stderr, "bench_data: %s\n", err.msg);
                return 1;
            }
            t[i] = now_s() - t0;
            esm_dataset_free(ds);
        }
        report("prepare", t, reps, threads);
    }
    for (int i = 0; i < reps; i++) {
        esm_dataset *ds;
        double t0 = now_s();
        if (esm_cache_read(cache, &ds, &err) != ESM_OK) {
            fprintf(stderr, "bench_data: %s\n", err.msg);
            return 1;
        }
        t[i] = now_s() - t0;
        esm_dataset_free(ds);
    }
    report("cache_load", t, reps, 1);
    remove(cache);
    return 0;
}
