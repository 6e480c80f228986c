/* One source per harness, built two ways: by clang with libFuzzer (`make fuzz`), where the
 * entry is LLVMFuzzerTestOneInput, and by gcc into the test suite, where each harness gets
 * its own name so that tests/test_fuzz_replay.c can feed it every corpus file (CI replays
 * the corpus without clang). */
#ifndef ESM_FUZZ_TARGET_H
#define ESM_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

#ifdef ESM_LIBFUZZER
#define FUZZ_TARGET(name) int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#else
#define FUZZ_TARGET(name) int esm_fuzz_##name(const uint8_t *data, size_t size)
#endif

/* Writes data to a file private to this process (parsers that take a path need one) and
 * returns its path, or NULL. */
const char *esm_fuzz_file(const char *suffix, const uint8_t *data, size_t size);
/* The same with the last 4 bytes replaced by the CRC-32 of the rest, as the esmeta formats end:
 * a mutated input almost never keeps its checksum, so a harness whose parser refused one for
 * that alone parses it again fixed, to reach the checks behind the checksum. NULL when the
 * input is too short or its checksum was already right. */
const char *esm_fuzz_file_crc(const char *suffix, const uint8_t *data, size_t size);

#endif
