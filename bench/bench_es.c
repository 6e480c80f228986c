/* tell() cost at the Omniglot Prototypical-Network size (111,936 parameters) for P = 32..256,
 * per strategy. No assertions: it prints one line per case. Build and run (after `make`):
 *   gcc -O2 -std=c11 -fopenmp -Iinclude bench/bench_es.c build/libesmeta.a -lz -lm -o build/bench_es
 *   build/bench_es [reps]
 * The member materialisation time (all P members, as a single evaluator would) is shown too. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "esmeta.h"

int main(int argc, char **argv)
{
    const size_t dim = 111936;
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    const char *const *names = esm_es_strategy_names();
    float *theta = malloc(dim * sizeof *theta);
    printf("dim %zu, %d OpenMP threads, mean of %d tells\n", dim, omp_get_max_threads(), reps);
    for (int k = 0; names[k]; k++) {
        for (int p = 32; p <= 256; p *= 2) {
            esm_err err;
            esm_es_config c;
            esm_es *es;
            if (esm_es_config_init(&c, names[k], dim, &err) || (c.popsize = p, esm_es_create(&es, &c, NULL, &err))) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            float *fit = malloc((size_t)p * sizeof *fit);
            double t_tell = 0, t_ask = 0;
            for (int r = 0; r < reps; r++) {
                double t0 = now_s();
                for (int i = 0; i < p; i++) {
                    esm_es_member(es, i, theta);
                    fit[i] = (float)((i * 7919 + r * 31) % p); /* any ranking will do */
                }
                double t1 = now_s();
                if (esm_es_tell(es, fit, NULL, &err)) {
                    fprintf(stderr, "%s\n", err.msg);
                    return 1;
                }
                t_ask += t1 - t0;
                t_tell += now_s() - t1;
            }
            printf("%-10s P=%3d  tell %8.1f ms   all members %8.1f ms\n", names[k], p, 1e3 * t_tell / reps,
                   1e3 * t_ask / reps);
            free(fit);
            esm_es_free(es);
        }
    }
    free(theta);
    return 0;
}
