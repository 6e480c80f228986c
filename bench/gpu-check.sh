#!/bin/sh
# The GPU check of the CUDA population evaluator, in one go (a few minutes on one H100/H200):
#   1. the machine: GPU, driver, nvcc;
#   2. build (normal build, nvcc found -> --device cuda compiled in);
#   3. the gated tests: device noise against esm_gauss_range, CUDA fitness against the CPU's for
#      the same members on the same episodes (FP32 and TF32), then the whole suite;
#   4. generation timing for P = 64 .. PMAX (build/bench_cuda_gen: generations/s, images/s,
#      achieved conv TFLOP/s), FP32 and TF32;
#   5. a short ES-ProtoNet run with --device cuda (and its first generations on the CPU, to set
#      the two trajectories side by side);
#   6. only with PAPER_S > 0: the paper-scale run, trainval for PAPER_S seconds with a population
#      of PAPER_POP on 20-way episodes, then the test protocol (scripts/eval-protocol).
# Every step has its own time cap, so one slow step cannot eat the device session: the caps are
# the T_* variables below (seconds); a step that hits its cap reports rc 124 and fails the check.
# Every result is one JSON line on stdout; logs and run folders go to $OUT (or ./gpu-check-out).
# usage: bench/gpu-check.sh   (from anywhere)
# Data: $ESMETA_DATA, ../shared/data/omniglot, shared/data/omniglot, data/omniglot.esmc or
# data/omniglot. The device machine gets only the working tree, so carry the data: e.g.
#   build/esmeta prepare --out data/omniglot.esmc      (25 MB; data/ is git-ignored)
# and pass carry ["data"] to the device run. Without data, 3 and 4 run on synthetic episodes
# and 5 cannot run, so the check fails. It exits non-zero on a build without CUDA ("cuda":false),
# unless every cuda_gpu_* test ran and passed, and when any later step fails.
# Environment: GENS (timed generations per P, default 5), PMAX (largest timed P, default 16384),
#              RUN_GENS (ES run length, default 40), FULL_SUITE=0 to skip the whole test suite,
#              PAPER_S / PAPER_POP (step 6, default 0 = skipped / 4096), and the caps T_BUILD 300,
#              T_TEST 300, T_SUITE 240, T_BENCH 200 (per device mode), T_RUN 240 (per ES run).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
GENS=${GENS:-5}
RUN_GENS=${RUN_GENS:-40}
FULL_SUITE=${FULL_SUITE:-1}
PMAX=${PMAX:-16384}
PAPER_S=${PAPER_S:-0}
PAPER_POP=${PAPER_POP:-4096}
T_BUILD=${T_BUILD:-300}; T_TEST=${T_TEST:-300}; T_SUITE=${T_SUITE:-240}; T_BENCH=${T_BENCH:-200}; T_RUN=${T_RUN:-240}
export OMP_WAIT_POLICY=PASSIVE
J=$(nproc 2>/dev/null || echo 4)

# One-line strings for JSON: backslashes, quotes, tabs; newlines become " | ".
jstr() { printf '%s' "$1" | tr '\t' ' ' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk 'BEGIN{ORS=""} NR>1{print " | "} {print}'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}'; }

# ---- 1. the machine
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 1)
nvcc_v=$( (command -v nvcc >/dev/null && nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1 | tail -n 2 | head -n 1)
echo "{\"step\":\"machine\",\"gpu\":\"$(jstr "$gpu")\",\"nvcc\":\"$(jstr "$nvcc_v")\",\"cores\":$J}"

# ---- 2. build (not `make test`: that first runs scripts/install-deps, which may need a network)
missing=""
for p in openblas libpng libzip zlib; do pkg-config --exists "$p" 2>/dev/null || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo "{\"step\":\"build\",\"ok\":false,\"error\":\"missing pkg-config packages:$missing\"}"
    exit 1
fi
t0=$(now)
if timeout "$T_BUILD" make -j"$J" all bench build/esmeta-tests >"$OUT/build.log" 2>&1; then
    echo "{\"step\":\"build\",\"ok\":true,\"s\":$(since "$t0")}"
else
    echo "{\"step\":\"build\",\"ok\":false,\"s\":$(since "$t0"),\"log_tail\":\"$(jstr "$(tail -n 15 "$OUT/build.log")")\"}"
    exit 1
fi
version=$(build/esmeta --version)
echo "{\"step\":\"version\",\"esmeta\":$version}"
case $version in
*'"cuda":true'*) ;;
*) echo "{\"step\":\"version\",\"ok\":false,\"error\":\"this build has no CUDA: nothing below could run on the GPU\"}"; exit 1 ;;
esac

# ---- data: a cache file makes every later load fast
DATA=""
for d in "${ESMETA_DATA:-}" ../shared/data/omniglot shared/data/omniglot data/omniglot.esmc data/omniglot; do
    [ -n "$d" ] && [ -e "$d" ] && { DATA=$d; break; }
done
CACHE=""
if [ -n "$DATA" ] && [ -f "$DATA" ]; then
    CACHE=$DATA
    echo "{\"step\":\"data\",\"ok\":true,\"source\":\"$(jstr "$DATA")\"}"
    export ESMETA_DATA="$DATA"
elif [ -n "$DATA" ]; then
    CACHE=/tmp/esmeta-gpu-check.esmc
    t0=$(now)
    if build/esmeta prepare --data "$DATA" --out "$CACHE" >"$OUT/prepare.log" 2>&1; then
        echo "{\"step\":\"data\",\"ok\":true,\"source\":\"$(jstr "$DATA")\",\"s\":$(since "$t0")}"
        export ESMETA_DATA="$DATA"
    else
        echo "{\"step\":\"data\",\"ok\":false,\"log_tail\":\"$(jstr "$(tail -n 5 "$OUT/prepare.log")")\"}"
        CACHE=""
    fi
else
    echo "{\"step\":\"data\",\"ok\":false,\"note\":\"no Omniglot data: comparisons and timing use synthetic episodes; the ES run is skipped\"}"
    export ESM_TEST_SYNTHETIC=1
fi

# ---- 3. tests: the GPU tests first (every one must run: a skip fails the check), then everything
status=0
t0=$(now)
ESM_TEST_VERBOSE=1 ESM_TEST_CLI=build/esmeta timeout "$T_TEST" build/esmeta-tests cuda >"$OUT/test-cuda.log" 2>&1
rc=$?
want=$(grep -c '^TEST(cuda_gpu_' tests/test_cuda.c)
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$OUT/test-cuda.log" | tail -n 1)
gpu_ran=$(grep -c '^ok   cuda_gpu_' "$OUT/test-cuda.log")
[ "$rc" -eq 0 ] && [ -n "$line" ] && [ "$gpu_ran" -eq "$want" ] || status=1
echo "{\"step\":\"test_cuda\",\"ok\":$([ $status = 0 ] && echo true || echo false),\"rc\":$rc,\"gpu_tests_passed\":$gpu_ran,\"gpu_tests\":$want,\"s\":$(since "$t0"),\"summary\":\"$(jstr "$(grep -E '^(ok|FAIL|skip)|passed, |noise:|data, width|^    [a-z_/.]+:[0-9]+: ' "$OUT/test-cuda.log")")\"}"
if [ "$FULL_SUITE" = 1 ]; then
    t0=$(now)
    ESM_TEST_CLI=build/esmeta timeout "$T_SUITE" build/esmeta-tests >"$OUT/test-all.log" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || status=1
    echo "{\"step\":\"test_all\",\"rc\":$rc,\"s\":$(since "$t0"),\"summary\":\"$(jstr "$(grep -E 'passed, |^FAIL|^skip|^    [a-z_/.]+:[0-9]+: ' "$OUT/test-all.log" | tail -n 12)")\"}"
fi

# ---- 4. generation timing, P = 64 .. PMAX
for dev in cuda cuda-tf32; do
    g=$GENS
    [ "$dev" = cuda-tf32 ] && g=3
    timeout "$T_BENCH" build/bench_cuda_gen "${CACHE:-synthetic}" "$g" "$dev" "$PMAX" 2>>"$OUT/bench.log" ||
        { echo "{\"step\":\"bench\",\"device\":\"$dev\",\"rc\":$?}"; status=1; }
done
if [ -z "$CACHE" ]; then
    echo "{\"step\":\"es_run\",\"ok\":false,\"error\":\"no data: the GPU training run did not run\"}"
    exit 1
fi

# ---- 5. a short ES-ProtoNet run on the GPU, and its first generations on the CPU
run_es() { # device gens dir
    rm -rf "$3"
    t0=$(now)
    timeout "$T_RUN" build/esmeta train --data "$CACHE" --split train --trainer es --device "$1" --pop 256 --sigma 0.02 --lr 0.002 \
        --generations "$2" --centre-every 10 --eval-every "$2" --eval-episodes 100 --checkpoint-every 0 --quiet \
        --out "$3" >"$3.json" 2>"$3.err"
    rc=$?
    [ "$rc" -eq 0 ] || status=1
    first=$(head -n 1 "$3/metrics.jsonl" 2>/dev/null)
    last=$(grep '"generation"' "$3/metrics.jsonl" 2>/dev/null | tail -n 1)
    ev=$(grep '"eval_acc"' "$3/metrics.jsonl" 2>/dev/null | tail -n 1)
    sum=$(tail -n 1 "$3.json" 2>/dev/null)
    echo "{\"step\":\"es_run\",\"device\":\"$1\",\"rc\":$rc,\"s\":$(since "$t0"),\"summary\":${sum:-null},\"first\":${first:-null},\"last\":${last:-null},\"eval\":${ev:-null},\"stderr\":\"$(jstr "$(tail -n 3 "$3.err")")\"}"
}
run_es cuda "$RUN_GENS" "$OUT/es-cuda"
run_es cpu 3 "$OUT/es-cpu"
# The same three generations on the GPU, for the side-by-side (losses agree to ~1e-5 at first;
# ES rankings amplify the differences over generations).
run_es cuda 3 "$OUT/es-cuda3"

# ---- 6. the paper-scale run (issue 14's target: >= 98.4% 5-way 5-shot test), only when asked
if [ "$PAPER_S" -gt 0 ]; then
    rm -rf "$OUT/paper"
    t0=$(now)
    timeout $((PAPER_S + 120)) build/esmeta train --data "$CACHE" --split trainval --trainer es --device cuda \
        --pop "$PAPER_POP" --way 20 --shot 5 --query 5 --sigma 0.02 --lr 0.002 --generations 1000000 \
        --lr-halve-every "${PAPER_HALVE:-1500}" --time-limit "$PAPER_S" \
        --checkpoint-every 200 --quiet --out "$OUT/paper" >"$OUT/paper.json" 2>"$OUT/paper.err"
    rc=$?
    [ "$rc" -eq 0 ] || status=1
    echo "{\"step\":\"paper_run\",\"rc\":$rc,\"s\":$(since "$t0"),\"pop\":$PAPER_POP,\"summary\":$(tail -n 1 "$OUT/paper.json" 2>/dev/null || echo null),\"stderr\":\"$(jstr "$(tail -n 3 "$OUT/paper.err")")\"}"
    if [ "$rc" -eq 0 ]; then
        timeout 300 scripts/eval-protocol "$OUT/paper/checkpoint.bin" --data "$CACHE" >"$OUT/paper-eval.txt" 2>&1 ||
            status=1
        echo "{\"step\":\"paper_eval\",\"table\":\"$(jstr "$(grep '^|' "$OUT/paper-eval.txt")")\"}"
    fi
fi
exit $status
