#!/bin/sh
# esmeta's ES-ProtoNet against the peers a user would pick instead, EvoTorch (PyTorch) and evosax (JAX),
# running the same ES on the same objective, on the same cores, for the same wall-clock budget, one after
# the other:
#   esmeta   build/esmeta train --trainer es --strategy openai-es --width 32 --pop 64 --sigma 0.02 --lr 0.002
#            --way 5 --shot 5 --query 5 --time-limit S (it stops before a generation would end past S
#            seconds and saves), then build/esmeta eval of the centre on the test split;
#   evotorch bench/peer_evotorch.py: EvoTorch's PGPE configured as OpenAI-ES (antithetic, centred ranks,
#            Adam, fixed sigma) on the same conv-4 ProtoNet and episode shape, then the same evaluation
#            protocol in Python;
#   evosax   bench/peer_evosax.py: evosax's Open_ES (antithetic, centred ranks, optax Adam, fixed sigma)
#            on the same network and episodes shape, the same evaluation protocol (JAX on the CPU;
#            compilation and the vmap/map trial happen before its budget starts).
# Both evaluate 5-way 5-shot 15-query episodes of the Vinyals test split with batch norm in evaluation mode
# (the centre's running statistics, tracked the same way by both sides); the episodes themselves are
# different draws (esmeta's Philox streams, numpy's generator) from the same classes.
# Prints a Markdown table; writes OUT/results.jsonl (one JSON line per peer), OUT/table.md, OUT/esmeta/
# (run directory), OUT/evotorch.jsonl and OUT/evosax.jsonl (the peers' per-generation lines).
#
# usage: bench/compare-peers.sh [options]
#   --python PY      interpreter with torch and evotorch (default: $PYTHON, else python3)
#   --data FILE      esmeta cache file, e.g. data/omniglot.esmc (default: $ESMETA_DATA, else data/omniglot.esmc);
#                    the peer reads the cache format directly, so a folder will not do
#   --seconds S      training budget per side in wall-clock seconds (default 600)
#   --threads T      threads per side (default: all cores); OpenMP for esmeta, torch intra-op for the peer
#   --episodes N     test episodes per side (default 1000)
#   --seed S         training seed (default 1); test episodes use seed 0 on both sides
#   --out DIR        (default peers)
#   --peers LIST     which to run, comma-separated (default esmeta,evotorch,evosax; they run in that order)
#   --cpus LIST      pin every side to these CPUs (taskset -c LIST), e.g. 0,1 (default: no pinning)
#   --evosax-python PY  interpreter with jax and evosax (default: the --python one)
#
# Python, EvoTorch and evosax are needed only here, never by the build or the tests.
set -eu
usage() { sed -n '21,33p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
py=${PYTHON:-python3}; data=${ESMETA_DATA:-data/omniglot.esmc}; seconds=600; threads=$(nproc); episodes=1000
seed=1; out=peers; peers=esmeta,evotorch,evosax; cpus=""; expy=""
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
    --python) py=$2 ;;
    --data) data=$2 ;;
    --seconds) seconds=$2 ;;
    --threads) threads=$2 ;;
    --episodes) episodes=$2 ;;
    --seed) seed=$2 ;;
    --out) out=$2 ;;
    --peers) peers=$2 ;;
    --cpus) cpus=$2 ;;
    --evosax-python) expy=$2 ;;
    *) echo "compare-peers.sh: unknown option $1" >&2; usage ;;
    esac
    shift 2
done
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/esmeta
[ -x "$bin" ] || { echo "compare-peers.sh: $bin is missing; run make first" >&2; exit 1; }
[ -f "$data" ] || { echo "compare-peers.sh: $data is not a file; make a cache with '$bin prepare --out $data'" >&2; exit 1; }
expy=${expy:-$py}
want() { case ",$peers," in *,"$1",*) return 0 ;; *) return 1 ;; esac; }
! want evotorch || "$py" -c 'import torch, evotorch' 2>/dev/null ||
    { echo "compare-peers.sh: $py cannot import torch and evotorch (pip install evotorch); see bench/README.md" >&2; exit 1; }
! want evosax || "$expy" -c 'import jax, evosax' 2>/dev/null ||
    { echo "compare-peers.sh: $expy cannot import jax and evosax (pip install evosax 'jax[cpu]'); see bench/README.md" >&2; exit 1; }
pin() { if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi; }
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"
: > "$out/results.jsonl"
field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" | tail -n 1; }
now() { date +%s.%N; }
es_args="--trainer es --strategy openai-es --width 32 --pop 64 --sigma 0.02 --lr 0.002 --way 5 --shot 5 --query 5"

if want esmeta; then
    run=$out/esmeta
    rm -rf "$run"
    # shellcheck disable=SC2086
    # --time-limit ends the run cleanly before a generation would pass the budget and saves it.
    OMP_NUM_THREADS=$threads pin "$bin" train $es_args --data "$data" --split trainval \
        --generations 1000000000 --seed "$seed" --out "$run" --checkpoint-every 0 --centre-every 0 \
        --threads "$threads" --time-limit "$seconds" --quiet >/dev/null
    [ -f "$run/checkpoint.bin" ] || { echo "compare-peers.sh: esmeta training left no checkpoint" >&2; exit 1; }
    last=$(grep '"generation"' "$run/metrics.jsonl" | tail -n 1)
    gens=$(echo "$last" | field generation); train_s=$(echo "$last" | field elapsed_s)
    # Mean member loss over the first and last k generations (k = min(50, G/4)), as the peer reports it.
    losses=$(grep '"generation"' "$run/metrics.jsonl" | sed -n 's/.*"loss":\([-0-9.eE+]*\).*/\1/p' | awk '
        { l[NR] = $1 } END { k = int(NR / 4); if (k > 50) k = 50; if (k < 1) k = 1;
          for (i = 1; i <= k; i++) { a += l[i]; b += l[NR - k + i] } printf "%.4f %.4f", a / k, b / k }')
    t0=$(now)
    res=$(OMP_NUM_THREADS=$threads pin "$bin" eval --checkpoint "$run/checkpoint.bin" --data "$data" --split test \
        --way 5 --shot 5 --query 15 --episodes "$episodes" --seed 0 --threads "$threads")
    t1=$(now)
    printf '{"peer":"esmeta","version":"%s","generations":%s,"train_s":%s,"s_per_gen":%s,"loss_first":%s,"loss_last":%s,"eval_split":"test","test_task":"5-way 5-shot 15-query","episodes":%s,"eval_bn":"running","accuracy":%s,"ci95":%s,"loss":%s,"eval_s":%.2f,"threads":%s,"seconds":%s}\n' \
        "$("$bin" --version 2>/dev/null | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')" "$gens" "$train_s" \
        "$(awk -v t="$train_s" -v g="$gens" 'BEGIN { printf "%.5f", t / g }')" \
        "${losses% *}" "${losses#* }" "$episodes" "$(echo "$res" | field accuracy)" "$(echo "$res" | field ci95)" \
        "$(echo "$res" | field loss)" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$threads" "$seconds" |
        tee -a "$out/results.jsonl" >&2
fi

if want evotorch; then
    OMP_NUM_THREADS=$threads pin "$py" "$root/bench/peer_evotorch.py" --data "$data" --seconds "$seconds" \
        --threads "$threads" --eval-episodes "$episodes" --seed "$seed" --eval-bn running \
        --out "$out/evotorch.jsonl" > "$out/evotorch.final.json"
    head -n 1 "$out/evotorch.jsonl" | sed 's/^{/{"setup":true,/' >&2
    sed 's/}$/,"threads":'"$threads"',"seconds":'"$seconds"'}/' "$out/evotorch.final.json" | tee -a "$out/results.jsonl" >&2
fi

if want evosax; then
    # XLA sizes its thread pool from the CPUs the process may use: --cpus (or $threads cores) bounds it.
    pin "$expy" "$root/bench/peer_evosax.py" --data "$data" --seconds "$seconds" --eval-episodes "$episodes" \
        --seed "$seed" --out "$out/evosax.jsonl" > "$out/evosax.final.json"
    head -n 1 "$out/evosax.jsonl" | sed 's/^{/{"setup":true,/' >&2
    sed 's/}$/,"threads":'"$threads"',"seconds":'"$seconds"'}/' "$out/evosax.final.json" | tee -a "$out/results.jsonl" >&2
fi

{
    echo "\`bench/compare-peers.sh --seconds $seconds --threads $threads --episodes $episodes${cpus:+ --cpus $cpus}\`: OpenAI-ES, conv-4 width 32"
    echo "(28,320 parameters), P = 64, sigma 0.02, Adam 0.002, one 5-way 5-shot 5-query trainval episode a generation;"
    echo "test: $episodes 5-way 5-shot 15-query episodes of the test split, batch norm with the centre's running"
    echo "statistics (evaluation mode) on every side. $threads threads${cpus:+ on CPUs $cpus}, $seconds s of training each, one after the other."
    echo
    echo "| peer | s / generation | generations in ${seconds} s | member loss first -> last | test accuracy | 95% CI |"
    echo "| --- | --- | --- | --- | --- | --- |"
    while read -r line; do
        peer=$(echo "$line" | sed 's/.*"peer":"\([^"]*\)".*/\1/')
        [ "$peer" = evosax ] && peer="evosax $("$expy" -c 'from importlib import metadata; print(metadata.version("evosax"))' 2>/dev/null) ($(echo "$line" | sed 's/.*"popeval":"\([^"]*\)".*/\1/'))"
        [ "$peer" = evotorch ] && peer="evotorch $("$py" -c 'import evotorch; print(evotorch.__version__)' 2>/dev/null) ($(echo "$line" | sed 's/.*"popeval":"\([^"]*\)".*/\1/'))"
        printf '| %s | %.3f | %s | %s -> %s | %.2f%% | +- %.2f%% |\n' "$peer" "$(echo "$line" | field s_per_gen)" \
            "$(echo "$line" | field generations)" "$(echo "$line" | field loss_first)" \
            "$(echo "$line" | field loss_last)" "$(awk -v a="$(echo "$line" | field accuracy)" 'BEGIN { print 100 * a }')" \
            "$(awk -v a="$(echo "$line" | field ci95)" 'BEGIN { print 100 * a }')"
    done < "$out/results.jsonl"
} > "$out/table.md"
cat "$out/table.md"
