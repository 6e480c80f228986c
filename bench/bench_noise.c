/* The noise side of the ES update, per member and coordinate: regenerating each member's noise
 * from the counter-based generator (what esmeta does: esm_gauss_range, any slice of any member
 * directly) against reading it from a precomputed shared table of Gaussian floats (OpenAI's
 * es_distributed: a member is an offset into the table). Both accumulate sum_i w_i * e_i in double
 * chunk by chunk over antithetic pairs, as tell() does. One thread, CPU time (robust to a shared
 * machine); prints one line per table size.
 *   make bench && build/bench_noise [pop] [dim]        (defaults 64 and 111,936) */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "esmeta.h"

#define CHUNK 1024

static void accumulate(double *s1, const float *z, float w, size_t n)
{
    for (size_t j = 0; j < n; j++)
        s1[j] += (double)w * z[j];
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds for one pass over all chunks and members; table NULL regenerates. Members come in
 * antithetic pairs, as with openai-es and pgpe: one draw (or one table slice) per pair. */
static double pass(const float *table, size_t table_len, int pop, size_t dim, const float *w, double *sink)
{
    float z[CHUNK], mz[CHUNK];
    double s1[CHUNK];
    double t0 = cpu_s();
    for (size_t b = 0; b < dim; b += CHUNK) {
        size_t n = dim - b < CHUNK ? dim - b : CHUNK;
        for (size_t j = 0; j < n; j++)
            s1[j] = 0;
        for (int i = 0; i + 1 < pop; i += 2) {
            const float *src = z;
            if (table) /* a pair's offset: any fixed hash of (generation, pair) */
                src = table + ((uint64_t)i * 2654435761u) % (table_len - dim) + b;
            else
                esm_gauss_range(7, 3, (uint32_t)(i / 2), b, z, n);
            accumulate(s1, src, w[i], n);
            for (size_t j = 0; j < n; j++)
                mz[j] = -src[j];
            accumulate(s1, mz, w[i + 1], n);
        }
        *sink += s1[0];
    }
    return cpu_s() - t0;
}

int main(int argc, char **argv)
{
    int pop = argc > 1 ? atoi(argv[1]) : 64;
    size_t dim = argc > 2 ? (size_t)atol(argv[2]) : 111936;
    float *w = malloc((size_t)pop * sizeof *w);
    for (int i = 0; i < pop; i++)
        w[i] = (float)(i - pop / 2) / pop;
    double sink = 0, work = (double)pop * dim;
    size_t sizes[] = {(size_t)1 << 22, (size_t)1 << 25, (size_t)1 << 27};
    printf("pop %d (antithetic pairs), dim %zu, one thread; CPU ns per member-coordinate (best of 5 passes)\n", pop, dim);
    double regen = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = pass(NULL, 0, pop, dim, w, &sink);
        regen = t < regen ? t : regen;
    }
    printf("regenerate (Philox + Box-Muller)        %6.2f ns\n", 1e9 * regen / work);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        float *table = malloc(sizes[k] * sizeof *table);
        if (!table || sizes[k] <= dim) {
            free(table);
            continue;
        }
        esm_gauss_fill(11, 0, 0, table, sizes[k]);
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t = pass(table, sizes[k], pop, dim, w, &sink);
            best = t < best ? t : best;
        }
        printf("table of %4zu MiB (shared, read-only)   %6.2f ns  (%.2fx regenerate)\n",
               sizes[k] * sizeof(float) >> 20, 1e9 * best / work, regen / best);
        free(table);
    }
    fprintf(stderr, "(checksum %g)\n", sink);
    free(w);
    return 0;
}
