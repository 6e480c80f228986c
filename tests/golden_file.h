/* Reader for the reference files under tests/golden/ (format in tests/golden/gen_golden.py). */
#ifndef ESM_TEST_GOLDEN_FILE_H
#define ESM_TEST_GOLDEN_FILE_H

#include <stddef.h>

typedef struct {
    int count;
    char **names;
    float **data;
    size_t *len;
} esm_golden;

/* Loads tests/golden/<name> (relative to ESM_TEST_SRCDIR or the current folder); 0 on
 * success, else -1 with a reason on stderr. */
int esm_golden_load(const char *name, esm_golden *g);
void esm_golden_free(esm_golden *g);
/* The array called name, or NULL (with a note on stderr); *len gets its length if non-NULL. */
const float *esm_golden_get(const esm_golden *g, const char *name, size_t *len);

#endif
