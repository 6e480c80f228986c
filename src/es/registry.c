/* The strategies known by name. A new strategy adds one line here and its own file. */
#include "es/strategy.h"

#include <stdio.h>
#include <string.h>

extern const esm_es_strategy esm_es_openai_es, esm_es_pgpe, esm_es_snes, esm_es_sep_cma;

static const esm_es_strategy *const table[] = {&esm_es_openai_es, &esm_es_pgpe, &esm_es_snes,
                                               &esm_es_sep_cma};
static const char *const names[] = {"openai-es", "pgpe", "snes", "sep-cma", NULL};

#define N_STRATEGIES (sizeof table / sizeof table[0])
_Static_assert(N_STRATEGIES + 1 == sizeof names / sizeof names[0], "names and table must agree");

const char *const *esm_es_strategy_names(void)
{
    return names;
}

const esm_es_strategy *esm_es_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < N_STRATEGIES; i++)
        if (!strcmp(table[i]->name, name))
            return table[i];
    return NULL;
}

unsigned esm_es_capabilities(const char *strategy)
{
    const esm_es_strategy *vt = esm_es_find(strategy);
    return vt ? vt->caps : 0;
}

void esm_es_list_names(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_STRATEGIES && len < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", table[i]->name);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}
