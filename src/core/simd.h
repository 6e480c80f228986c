/* Runtime dispatch for the hot loops. ESM_HOT gives a function AVX-512 (x86-64-v4) and AVX2
 * (x86-64-v3) clones next to the baseline (x86-64-v2) one, and the loader picks the widest the CPU
 * runs (GCC target_clones, an ifunc): one binary, full width everywhere, unlike -march=native.
 * The build passes -ffp-contract=off, so no clone fuses a*b + c into an FMA the baseline does not
 * do, and without -ffast-math the vectoriser never reorders a float sum: every clone computes the
 * same bits (tests/test_simd.c checks a fused loop against a plain one). Set ESM_NO_CLONES to build
 * the baseline alone. */
#ifndef ESM_CORE_SIMD_H
#define ESM_CORE_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(ESM_NO_CLONES)
/* At -O2 GCC 12 vectorises only loops whose trip count it knows (the "very cheap" cost model):
 * the hot loops run over image rows and planes of any size, so their clones use the full model. */
#define ESM_HOT                                                                                  \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"),                 \
                   optimize("vect-cost-model=dynamic")))
#else
#define ESM_HOT
#endif

/* Short loops spend most of their time in the scalar tail a vectorised loop leaves. For an
 * elementwise step whose entries do not depend on each other, step(at, L) computes entries
 * at..at+L-1 with a fixed L (one vector of a clone's width, or a few), and ESM_OVERLAPPED covers a
 * length n >= L by blocks of L plus one last block that overlaps the one before it: entries
 * computed twice get the same value, so the overlap changes nothing. */
#define ESM_OVERLAPPED(L, n, step)                                                                  \
    do {                                                                                            \
        int x_ = 0;                                                                                 \
        for (; x_ + (L) <= (n); x_ += (L))                                                          \
            step(x_, L);                                                                            \
        if (x_ < (n))                                                                               \
            step((n) - (L), L);                                                                     \
    } while (0)

/* GCC will not inline a plain function into a clone built for another arch (the callee would
 * run at the baseline width behind a call): helpers of hot loops must be always_inline. */
#if defined(__GNUC__)
#define ESM_INLINE static inline __attribute__((always_inline))
#else
#define ESM_INLINE static inline
#endif

#endif
