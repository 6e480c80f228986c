/* esmeta core: status codes, error reports, counter-based random numbers. */
#ifndef ESMETA_CORE_H
#define ESMETA_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runtime failures the caller can act on. Programmer errors are asserts instead. */
typedef enum {
    ESM_OK = 0,
    ESM_EINVAL,     /* a parameter or option value is out of range */
    ESM_ENOTFOUND,  /* a file, folder, class or name does not exist */
    ESM_EIO,        /* reading or writing failed */
    ESM_EFORMAT,    /* a file is not what it claims to be (truncated, corrupt) */
    ESM_EVERSION,   /* a file of another format version */
    ESM_ECHECKSUM,  /* stored and computed checksums differ */
    ESM_ENOMEM,     /* an allocation failed */
    ESM_ENONFINITE, /* NaN or infinity where a finite number is needed */
    ESM_EMISMATCH,  /* shapes or configurations that must agree do not */
    ESM_EDIST,      /* a distributed peer failed or diverged */
    ESM_EUNSUPPORTED /* a feature this build does not have */
} esm_status;

/* One-line, human-readable account of the last failure. Functions that can fail take
 * an esm_err* (which may be NULL) and fill it; the library never prints.
 *
 * When a configuration value is at fault, `field` names it (else it is NULL), as the caller
 * wrote it: the member's path in the struct or the parameter the caller passed:
 *   esm_train_config: "trainer", "steps", "lr", "lr_halve_every", "weight_decay", "episodes_per_step",
 *     "stream_chunk", "device", "strategy", "pop", "sigma", "episodes_per_gen", "centre_every",
 *     "split", "net.width", "net.depth", "shape.way", "shape.shot", "shape.query"
 *     (esm_evaluate's and esm_episode_check's shape too);
 *   esm_images_opts: "shape.channels", "shape.height", "shape.width";
 *   parameters: "n_episodes" (esm_evaluate), "shard_mode" (esm_trainer_set_shard).
 * The message then mentions fields by these names, as words (after a blank or '(', before a blank
 * or punctuation; values the user gave are in quotes), and uses the names for nothing else, so
 * that a front end can rewrite them into its own terms (the CLI turns them into its flags). A
 * message may name more fields than `field` (e.g. the fix it suggests). */
typedef struct {
    esm_status code;
    char msg[512];
    const char *field; /* a static string, or NULL */
} esm_err;

const char *esm_status_name(esm_status s);

/* Records code and a printf-style message in err (if non-NULL), with no field; returns code so
 * that call sites can `return esm_fail(err, ESM_EIO, "...")`. */
esm_status esm_fail(esm_err *err, esm_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a configuration value at fault: field is one of the names above. */
esm_status esm_fail_field(esm_err *err, esm_status code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What this build can do; filled from compile-time configuration. */
typedef struct {
    const char *version;
    int openmp;
    int mpi;
    int cuda;
    const char *blas; /* BLAS vendor name */
} esm_features;

esm_features esm_get_features(void);

/* ---- the BLAS under the build ----
 * OpenBLAS picks its kernel ("core") for the CPU when it loads; an OpenBLAS that does not know a
 * CPU silently falls back to a generic SSE kernel several times slower. These calls let a program
 * (the CLI, at start-up) see what was picked, choose better, and check the kernel computes right. */
typedef struct {
    char core[32];    /* kernel in use, e.g. "Haswell" (OpenBLAS's name) */
    char config[160]; /* the library's build description */
    int threads;      /* threads one BLAS call may use: 1 is what esmeta needs */
} esm_blas_info;

void esm_blas_get_info(esm_blas_info *out);

/* Makes every BLAS call run on its calling thread (process-wide: OpenBLAS's own thread count).
 * esmeta does all threading itself, so no result depends on how a BLAS would split a GEMM; the
 * trainers and esm_evaluate refuse to run while the BLAS may use more threads. The CLI calls this
 * at start-up; a program using the library calls it once before training. (A serial OpenBLAS
 * build would need no call, but Debian's is not safe to call from several threads at once.) */
void esm_blas_single_thread(void);
/* ESM_OK when BLAS calls run single-threaded, else ESM_EUNSUPPORTED and how to fix it. */
esm_status esm_blas_check_single_thread(esm_err *err);

/* What of the CPU decides the kernel: features the CPU has and the OS has enabled. */
typedef struct {
    int avx2_fma; /* AVX2 and FMA3 */
    int avx512;   /* AVX-512 F, CD, BW, DQ and VL: what OpenBLAS's SkylakeX kernels use */
} esm_cpu_caps;

esm_cpu_caps esm_cpu_caps_detect(void);

/* The kernel to use instead of `core` on a CPU with `caps`, or NULL when `core` is fine: only a
 * generic kernel (one without AVX2/FMA code, such as Prescott, Core2 or Nehalem) on a CPU that can
 * run better is replaced, by SkylakeX with AVX-512 and by Haswell with AVX2 and FMA. A pure
 * function of its arguments. */
const char *esm_blas_better_core(const char *core, esm_cpu_caps caps);

/* Checks SGEMM against a double-precision reference on the shapes and transposes the model uses
 * (conv forward, input gradient, weight gradient; sizes past the small-matrix paths). Fails
 * (ESM_EUNSUPPORTED) naming the kernel, the shape and the error when the kernel computes wrong. */
esm_status esm_blas_selfcheck(esm_err *err);

/* ---- Philox4x32-10 (Salmon et al., SC'11) ----
 * A counter-based generator: output is a pure function of (key, counter), so any
 * thread, rank or device can draw any number without shared state. */
typedef struct { uint32_t v[4]; } esm_ctr4;
typedef struct { uint32_t v[2]; } esm_key2;

esm_ctr4 esm_philox4x32(esm_ctr4 ctr, esm_key2 key);

/* Maps 32 random bits to a float in (0, 1), never 0 so that log() is safe. */
float esm_u32_to_open01(uint32_t x);

/* Four standard normals from one Philox block (Box-Muller on two pairs). */
void esm_gauss4(esm_ctr4 ctr, esm_key2 key, float out[4]);

/* A sequential view over Philox for code that wants "the next number": the stream is
 * identified by (key, c0, c1, c2) and walks c3. Copyable; holds no pointers. */
typedef struct {
    esm_key2 key;
    esm_ctr4 ctr;
    uint32_t buf[4];
    int used; /* how many of buf have been handed out (4 = empty) */
} esm_stream;

esm_stream esm_stream_make(uint64_t seed, uint32_t c0, uint32_t c1, uint32_t c2);
uint32_t esm_stream_u32(esm_stream *s);
/* Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject). n > 0. */
uint32_t esm_stream_below(esm_stream *s, uint32_t n);
float esm_stream_uniform(esm_stream *s);  /* in (0, 1) */
float esm_stream_gauss(esm_stream *s);    /* standard normal */

/* Fills out[0..n) with standard normals that are a pure function of (seed, c0, c1) and
 * the index: element j comes from block j/4, so any sub-range can be regenerated alone. */
void esm_gauss_fill(uint64_t seed, uint32_t c0, uint32_t c1, float *out, size_t n);
/* The same numbers, for the range [begin, begin+n) of that sequence. */
void esm_gauss_range(uint64_t seed, uint32_t c0, uint32_t c1, size_t begin, float *out, size_t n);

/* CRC-32 (zlib's) over a buffer, continuing from crc (start with 0). */
uint32_t esm_crc32(uint32_t crc, const void *buf, size_t len);
/* The CRC-32 of A followed by B from crc_a, crc_b and B's length (a header written last). */
uint32_t esm_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

#ifdef __cplusplus
}
#endif
#endif
