#!/bin/sh
# Line coverage of each parser over its corpus: the harness is linked with the parser's own
# sources built with clang's source-based coverage (the rest of the library from build/), then
# every file of fuzz/corpus/<harness>/ and build-fuzz/corpus/<harness>/ (if any) is run once.
# Prints one line per harness: the parser files and their line coverage. Run after `make`.
set -eu
CC=${FUZZ_CC:-clang-14}
out=build-fuzz/coverage
mkdir -p "$out"
flags="-Iinclude -Isrc -Ifuzz -D_POSIX_C_SOURCE=200809L -DESM_VERSION=\"0.1.0\" -DESM_LIBFUZZER -g -O0 -fopenmp \
 $(pkg-config --cflags libpng libzip zlib)"
libs="build/libesmeta.a -L$(dirname "$(ls /usr/lib/*/openblas-pthread/libopenblas.so | head -1)") -lopenblas \
 $(pkg-config --libs libpng libjpeg libzip zlib) $(pkg-config --libs ompi-c 2>/dev/null || true) -fopenmp -lm"
[ -n "$(ls /usr/local/cuda*/lib64/libcudart.so 2>/dev/null)" ] && \
    libs="$libs -L$(dirname "$(ls /usr/local/cuda*/lib64/libcudart.so | head -1)") -lcublas -lcudart -lstdc++"
for spec in cache:src/data/cache.c cli:cli/options.c,cli/args.c ckpt:src/train/ckpt_file.c,src/train/config.c es_state:src/es/es.c \
            split:src/data/split.c zip:src/data/source_zip.c,src/data/png_preprocess.c; do
    h=${spec%%:*}
    srcs=$(echo "${spec#*:}" | tr , ' ')
    # shellcheck disable=SC2086
    $CC $flags -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -o "$out/cov_$h" \
        fuzz/fuzz_$h.c fuzz/fuzz_file.c $srcs $libs
    dirs="fuzz/corpus/$h"
    [ -d "build-fuzz/corpus/$h" ] && dirs="$dirs build-fuzz/corpus/$h"
    # shellcheck disable=SC2086
    LLVM_PROFILE_FILE="$out/$h.profraw" "$out/cov_$h" -runs=0 -close_fd_mask=3 $dirs >/dev/null 2>&1
    llvm-profdata-14 merge -o "$out/$h.profdata" "$out/$h.profraw"
    # shellcheck disable=SC2086
    llvm-cov-14 report "$out/cov_$h" -instr-profile="$out/$h.profdata" $srcs | tail -1 |
        awk -v h="$h" -v s="$srcs" '{ printf "%-9s %-45s lines %s of %s covered (%s)\n", h, s, $8 - $9, $8, $10 }'
done
