#!/bin/sh
# The ES gradient estimate along a run (issue 13): build/bench_es_cosine at generation 0 (the run's
# own initial network, --at-init) and at each checkpoint snapshot RUN_DIR/snap-K.bin that
# scripts/study-arm keeps (every 500 generations; the last is the end), or at RUN_DIR/checkpoint.bin
# when there are none. Prints a Markdown table, one row per (generation, P):
#   cos own      cos(ghat_e, g_e): openai-es's estimate against the backprop gradient of its episode
#   cos expected cos(ghat_e, G):   against the expected gradient (mean over --mean-episodes
#                                  episodes, corrected for that mean's own noise)
#   antithetic   the same two for the unshaped antithetic estimator, and its share of the exact
#                gradient, ghat_e . g_e / |g_e|^2 (1 where the loss is quadratic at scale sigma;
#                below 1 where smoothing by the noise bends the gradient ES follows)
#   episode      cos(g_e, G): one episode's exact gradient against the expected one (task noise)
# all means over the episodes (sd in parentheses). JSON lines go to RUN_DIR/es-cosine.jsonl.
#
# usage: bench/es-cosine.sh RUN_DIR [bench_es_cosine flags...]
#   env: DATA (default data/omniglot.esmc), CPUS (e.g. 1: run pinned with taskset, niced)
# The flags pass through (e.g. --pops 64,256,1024,4096 --episodes 10 --threads 2); the defaults
# take a few minutes per checkpoint on one core at 20-way 5+5, width 16 (bench_es_cosine.c).
set -eu
[ $# -ge 1 ] || { echo "usage: bench/es-cosine.sh RUN_DIR [bench_es_cosine flags...]" >&2; exit 2; }
run=$1; shift
here=$(dirname "$0")
bin=$here/../build/bench_es_cosine
data=${DATA:-data/omniglot.esmc}
[ -x "$bin" ] || { echo "es-cosine: $bin is missing: run make bench" >&2; exit 2; }
[ -d "$run" ] || { echo "es-cosine: $run is not a run folder" >&2; exit 2; }
snaps=$(ls "$run"/snap-*.bin 2>/dev/null | sort -t- -k2 -n || true)
[ -n "$snaps" ] || snaps=$run/checkpoint.bin
[ -f "$(echo "$snaps" | head -1)" ] || { echo "es-cosine: no snap-K.bin or checkpoint.bin in $run" >&2; exit 2; }
pin=${CPUS:+taskset -c $CPUS nice -n 5}
out=$run/es-cosine.jsonl
: > "$out"
first=$(echo "$snaps" | head -1)
$pin "$bin" --data "$data" --checkpoint "$first" --at-init "$@" >> "$out"
for s in $snaps; do
    $pin "$bin" --data "$data" --checkpoint "$s" "$@" >> "$out"
done
awk '
function stat(line, key,    m) {   # "key":{"mean":X,"sd":Y  ->  X (Y)
    if (!match(line, "\"" key "\":\\{\"mean\":[-0-9.e]+,\"sd\":[-0-9.e]+")) return "-"
    m = substr(line, RSTART + length(key) + 11, RLENGTH - length(key) - 11)
    sub(",\"sd\":", " (", m)
    return sprintf("%.3f (%.3f)", substr(m, 1, index(m, " ") - 1) + 0, substr(m, index(m, "(") + 1) + 0)
}
function num(line, key) {
    if (!match(line, "\"" key "\":[-0-9.e]+")) return ""
    return substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
}
/"what":"backprop"/ { g = num($0, "generation"); ep[g] = stat($0, "cos_episode_expected"); noise[g] = num($0, "gbar_noise_rel") }
/"what":"estimate"/ {
    g = num($0, "generation"); p = num($0, "pop")
    if (!((g, p) in seen)) { seen[g, p] = 1; order[++n] = g SUBSEP p }
    e = $0 ~ /"estimator":"antithetic"/ ? "a" : "o"
    own[g, p, e] = stat($0, "cos_own"); exp_[g, p, e] = stat($0, "cos_expected")
    if (e == "a") share[g, p] = stat($0, "proj_own")
}
END {
    print "| generation | P | cos own (openai-es) | cos expected (openai-es) | cos own (antithetic) | cos expected (antithetic) | share of g_e (antithetic) | episode cos expected (backprop) | gbar noise |"
    print "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for (i = 1; i <= n; i++) {
        split(order[i], k, SUBSEP); g = k[1]; p = k[2]
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", g, p, own[g, p, "o"], exp_[g, p, "o"], own[g, p, "a"],
               exp_[g, p, "a"], share[g, p], ep[g], noise[g]
    }
}' "$out"
