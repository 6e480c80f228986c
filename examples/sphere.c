/* The smallest use of the installed library: the ask/tell ES minimising a user's own objective.
 * Build against an installed esmeta:   cc sphere.c $(pkg-config --cflags --libs esmeta) -o sphere
 * Prints one line per 50 generations and a last line "converged f=..." (exit 0) or
 * "not converged f=..." (exit 1). */
#include <stdio.h>
#include <stdlib.h>

#include <esmeta.h>

enum { DIM = 20, GENERATIONS = 400 };

/* The user's objective, here the shifted sphere: minimum 0 at x = (1, 1, ..., 1). */
static double sphere(const float *x)
{
    double f = 0;
    for (int j = 0; j < DIM; j++)
        f += (x[j] - 1.0) * (x[j] - 1.0);
    return f;
}

int main(void)
{
    esm_err err = {0};
    esm_es_config cfg;
    esm_es *es = NULL;
    if (esm_es_config_init(&cfg, "sep-cma", DIM, &err) != ESM_OK || (cfg.seed = 7, cfg.sigma0 = 0.5f,
                                                                     esm_es_create(&es, &cfg, NULL, &err)) != ESM_OK) {
        fprintf(stderr, "sphere: %s\n", err.msg);
        return 2;
    }
    int pop = esm_es_popsize(es);
    float *theta = malloc(sizeof *theta * DIM), *fitness = malloc(sizeof *fitness * (size_t)pop);
    if (!theta || !fitness)
        return 2;
    for (int g = 0; g < GENERATIONS; g++) {
        for (int i = 0; i < pop; i++) {
            esm_es_member(es, i, theta);
            fitness[i] = (float)-sphere(theta); /* every strategy maximises */
        }
        if (esm_es_tell(es, fitness, NULL, &err) != ESM_OK) {
            fprintf(stderr, "sphere: %s\n", err.msg);
            return 2;
        }
        if (g % 50 == 0)
            printf("generation %d f=%.3g\n", g, sphere(esm_es_mean(es)));
    }
    double f = sphere(esm_es_mean(es));
    int ok = f < 1e-6;
    printf("%s f=%.3g after %d generations of %s\n", ok ? "converged" : "not converged", f, GENERATIONS,
           esm_es_name(es));
    free(theta);
    free(fitness);
    esm_es_free(es);
    return ok ? 0 : 1;
}
