/* ES state: the first byte picks the strategy, the rest is loaded into an object of that
 * strategy (small dim and population, so that most inputs reach the field checks). */
#include <stdlib.h>

#include "esmeta/es.h"
#include "fuzz_target.h"

enum { DIM = 8, POP = 4 };

FUZZ_TARGET(es_state)
{
    if (size < 1)
        return 0;
    const char *const *names = esm_es_strategy_names();
    int n = 0;
    while (names[n])
        n++;
    esm_err err = {0};
    esm_es_config cfg;
    if (esm_es_config_init(&cfg, names[data[0] % n], DIM, &err) != ESM_OK)
        abort(); /* the harness itself is broken */
    cfg.popsize = POP;
    esm_es *es = NULL;
    if (esm_es_create(&es, &cfg, NULL, &err) != ESM_OK)
        abort();
    if (esm_es_load(es, data + 1, size - 1, &err) == ESM_OK) {
        float theta[DIM];
        esm_es_member(es, 0, theta); /* a loaded state must be usable */
    }
    esm_es_free(es);
    return 0;
}
