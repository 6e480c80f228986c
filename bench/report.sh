#!/bin/sh
# The performance report in one run on the same cores: OpenBLAS SGEMM GFLOP/s on the conv's GEMM
# shapes (the ceiling), forward images/s and conv GFLOP/s of the embedding network, ES generation
# time, the backprop step time, each on 1 thread and on T threads, and the peak resident memory of
# each. Every measurement runs in its own process (so its peak_rss_mib, getrusage's ru_maxrss
# sampled right after the timed runs, is its own), one after the other.
#   usage: bench/report.sh [DATA] [--threads T] [--cpus LIST] [--quick] [--md FILE] [--kernels N]
#     DATA       a cache from `esmeta prepare` or an Omniglot folder (default: $ESMETA_DATA, else
#                data/omniglot.esmc in the repository)
#     --threads  T, the second thread count (default: the CPUs this process may use)
#     --cpus     pin every measurement to these CPUs (taskset -c LIST, e.g. 0-1)
#     --quick    tiny sizes and few repetitions (seconds; a smoke check, not numbers to report)
#     --md FILE  also write the summary table to FILE (Markdown)
#     --kernels N  plain (the kernel users get) against every OpenBLAS kernel this CPU can run, forced
#                with OPENBLAS_CORETYPE: N rounds, each running every measurement under plain and
#                under each forced kernel in turn (each round starting one kernel later), so that
#                load which comes and goes hits all alike; every line gets "kernel" and "round", and the table gives each row's median
#                per kernel and plain's speed over the best forced kernel's (N rounds take N x
#                (kernels + 1) plain reports' time)
# Stdout: JSON lines, one object per measurement, each with "what" and units in its field names;
# first a "setup" line (machine, load average, commit), last a "done" line. Stderr: a summary table.
# Needs `make bench` first (`make bench-report` does both). Exit status 1 if a measurement failed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$root/build
me=bench/report.sh

die() { echo "$me: $*" >&2; exit 2; }

data="" threads="" cpus="" quick=0 md="" rounds=0
while [ $# -gt 0 ]; do
    case $1 in
    --threads) [ $# -ge 2 ] || die "--threads needs a value"; threads=$2; shift 2 ;;
    --cpus) [ $# -ge 2 ] || die "--cpus needs a value"; cpus=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --md) [ $# -ge 2 ] || die "--md needs a file"; md=$2; shift 2 ;;
    --kernels) [ $# -ge 2 ] || die "--kernels needs a number of rounds"; rounds=$2; shift 2 ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$data" ] || die "one DATA only (got '$data' and '$1')"; data=$1; shift ;;
    esac
done
[ -n "$data" ] || data=${ESMETA_DATA:-$root/data/omniglot.esmc}
[ -e "$data" ] || die "data not found: $data (make a cache with 'build/esmeta prepare --out data/omniglot.esmc' or pass DATA)"
for b in esmeta bench_model bench_es_gen bench_train_step; do
    [ -x "$build/$b" ] || die "$build/$b not built (run 'make bench' first)"
done
pin=""
if [ -n "$cpus" ]; then
    command -v taskset >/dev/null || die "--cpus needs taskset (util-linux), which is not installed"
    taskset -c "$cpus" true 2>/dev/null || die "taskset -c $cpus failed (no such CPUs?)"
    pin="taskset -c $cpus"
fi
# nproc alone would answer OMP_NUM_THREADS; the CPUs we may run on are what counts here.
[ -n "$threads" ] || threads=$($pin env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
case $threads in '' | *[!0-9]* | 0) die "--threads must be a positive integer (got '$threads')" ;; esac
case $rounds in '' | *[!0-9]*) die "--kernels must be a number of rounds, 1 or more (got '$rounds')" ;; esac
tlist=1
[ "$threads" -gt 1 ] && tlist="1 $threads"

# Sizes: default episodes are the ones the docs report (60-way 5+5 for one episode, P = 32 and 64
# for ES with 5-way 5+5 episodes); quick mode shrinks everything to run in seconds.
if [ "$quick" = 1 ]; then
    sgemm_s=0.1 model="20 5 5 2" gens=1 pops=8 step="10 5 5 2"
else
    sgemm_s=1.0 model="60 5 5 9" gens=5 pops="32 64" step="60 5 5 7"
fi

# The benches link the library directly, not through the CLI that replaces a generic OpenBLAS
# kernel; give them the kernel the CLI would use, so the report measures what users get.
version=$("$build/esmeta" --version)
case $version in *'"chosen_by":"esmeta"'*)
    OPENBLAS_CORETYPE=$(printf '%s' "$version" | sed -n 's/.*"blas":{[^}]*"core":"\([^"]*\)".*/\1/p')
    export OPENBLAS_CORETYPE ;;
esac
blas_core=$(printf '%s' "$version" | sed -n 's/.*"blas":{[^}]*"core":"\([^"]*\)".*/\1/p')
plain_core=${OPENBLAS_CORETYPE:-}
# The kernels this CPU can execute (as scripts/test-kernels picks them).
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { for f in "$@"; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
forced="Prescott"
has avx2 fma && forced="$forced Haswell"
has avx512f avx512cd avx512bw avx512dq avx512vl && forced="$forced SkylakeX"
has avx512f avx512cd avx512bw avx512dq avx512vl avx512_bf16 && forced="$forced Cooperlake"
case $version in *'"generic":true'*)
    echo "$me: warning: the BLAS kernel is the generic $blas_core on a CPU that can run a faster one;" \
        "these numbers are not what this machine can do (unset OPENBLAS_CORETYPE or set it to Haswell/SkylakeX)" >&2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=PASSIVE
jstr() { printf '%s' "$1" | tr '\t\n' '  ' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
loadavg() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -1; }
t_start=$(date +%s)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo true || echo false)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
printf '{"what":"setup","date_utc":"%s","cpu":"%s","cores_online":%s,"cpus":"%s","threads":[%s],"quick":%s,%s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(jstr "$cpu")" "$(nproc --all)" "$(jstr "${cpus:-all}")" "$(echo "$tlist" | tr ' ' ,)" \
    "$([ "$quick" = 1 ] && echo true || echo false)" \
    "\"data\":\"$(jstr "$data")\",\"commit\":\"$commit\",\"dirty\":$dirty,\"load_avg_1m\":$(loadavg),\"blas_core\":\"$blas_core\",\"esmeta\":$version}"

# run NAME THREADS CMD...: one measurement in its own process; its JSON lines go to stdout and to
# the summary; a failure becomes an "error" line and the run goes on. With --kernels every line
# starts with the kernel ($kernel) and the round ($round).
fail=0 kernel="" round=0
tag() { if [ -n "$kernel" ]; then sed "s/^{/{\"kernel\":\"$kernel\",\"round\":$round,/"; else cat; fi; }
run() {
    name=$1 t=$2
    shift 2
    if OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t $pin "$@" >"$tmp/out" 2>"$tmp/err"; then
        grep '^{' "$tmp/out" | tag | tee -a "$tmp/all.jsonl" || true
    else
        rc=$?
        fail=1
        echo "{\"what\":\"error\",\"measurement\":\"$name\",\"threads\":$t,\"rc\":$rc,\"stderr\":\"$(jstr "$(tail -n 3 "$tmp/err")")\"}" |
            tag | tee -a "$tmp/all.jsonl"
    fi
}

measure_all() {
    for t in $tlist; do
        run sgemm "$t" "$build/bench_es_gen" --only sgemm --threads "$t" --sgemm-s "$sgemm_s"
        # shellcheck disable=SC2086 # the size lists split on purpose
        run forward "$t" "$build/bench_model" --forward-only $model "$t"
        for p in $pops; do
            run es_generation "$t" "$build/bench_es_gen" "$data" "$gens" --only gen --pop "$p" --threads "$t"
        done
        # shellcheck disable=SC2086
        run backprop_step "$t" "$build/bench_train_step" $step "$t"
    done
}

if [ "$rounds" = 0 ]; then
    measure_all
else
    round=1
    while [ "$round" -le "$rounds" ]; do
        # each round starts one kernel later, so that no kernel always runs first
        set -- plain $forced
        r=$(((round - 1) % $#))
        while [ "$r" -gt 0 ]; do k=$1; shift; set -- "$@" "$k"; r=$((r - 1)); done
        for kernel in "$@"; do
            if [ "$kernel" = plain ]; then
                if [ -n "$plain_core" ]; then export OPENBLAS_CORETYPE="$plain_core"; else unset OPENBLAS_CORETYPE; fi
            else
                export OPENBLAS_CORETYPE="$kernel"
            fi
            measure_all
        done
        round=$((round + 1))
    done
    kernel=""
fi
echo "{\"what\":\"done\",\"wall_s\":$(($(date +%s) - t_start)),\"load_avg_1m\":$(loadavg),\"ok\":$([ $fail = 0 ] && echo true || echo false)}"

# The summary: one row per measurement, the headline number of each.
awk -v load="$(loadavg)" -v core="$blas_core" '
function get(k,   m) { if (!match($0, "\"" k "\":[^,}]*")) return ""; m = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3); gsub(/"/, "", m); return m }
BEGIN { print "| measurement | threads | shape | time | throughput | peak RSS (MiB) |"; print "| --- | --- | --- | --- | --- | --- |" }
{ w = get("what"); t = get("threads"); r = get("peak_rss_mib") }
w == "sgemm" { printf "| OpenBLAS SGEMM (ceiling) | %s | %s x %s x %s | %s s | %s GFLOP/s | %s |\n", t, get("m"), get("n"), get("k"), get("seconds"), get("gflop_per_s"), r }
w == "forward" { printf "| forward, one episode | %s | %s images | %s s | %s images/s, %s GFLOP/s (conv) | %s |\n", t, get("images"), get("s_per_episode"), get("images_per_s"), get("forward_conv_gflop_per_s"), r }
w == "es_generation" { printf "| ES generation | %s | P = %s | %s s | %s images/s, %s GFLOP/s (conv) | %s |\n", t, get("pop"), get("s_per_gen"), get("images_per_s"), get("conv_gflop_per_s"), r }
w == "esmeta_train_step" { printf "| backprop step (fwd + bwd + Adam) | %s | %s-way %s+%s | %s s | %s images/s, %s GFLOP/s (conv), %s of SGEMM | %s |\n", t, get("way"), get("shot"), get("query"), get("s_per_step"), get("images_per_s"), get("conv_gflop_per_s"), get("fraction_of_sgemm"), r }
w == "error" { printf "| FAILED: %s | %s | | | exit %s: %s | |\n", get("measurement"), t, get("rc"), get("stderr") }
END { printf "\nBLAS kernel: %s. Load average (1 min) at the end: %s; compare numbers within one run only.\n", core, load }
' "$tmp/all.jsonl" >"$tmp/summary.md"
# With --kernels: one row per measurement, the median of the rounds under each kernel, and plain's
# speed over the best forced kernel's (time rows: best time / plain time; rate rows: plain / best).
# The forward and the ES generation call no BLAS (the direct conv; only the conv backward calls
# sgemm), so the kernel cannot move them: their ratio shows the host's noise, and they are not judged.
if [ "$rounds" -gt 0 ]; then
    awk -v kernels="plain $forced" -v rounds="$rounds" -v load="$(loadavg)" '
function get(k,   m) { if (!match($0, "\"" k "\":[^,}]*")) return ""; m = substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3); gsub(/"/, "", m); return m }
function median(list,   v, n, i, j, x) { n = split(list, v, " "); for (i = 2; i <= n; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
    return n == 0 ? "" : (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }
{ w = get("what"); t = get("threads"); k = get("kernel"); row = ""
  blas = 1
  if (w == "sgemm") { row = "SGEMM " get("m") " x " get("n") " x " get("k"); val = get("gflop_per_s"); unit = "GFLOP/s"; up = 1 }
  else if (w == "forward") { row = "forward, " get("images") " images"; val = get("images_per_s"); unit = "images/s"; up = 1; blas = 0 }
  else if (w == "es_generation") { row = "ES generation, P = " get("pop"); val = get("s_per_gen"); unit = "s"; up = 0; blas = 0 }
  else if (w == "esmeta_train_step") { row = "backprop step"; val = get("s_per_step"); unit = "s"; up = 0 }
  if (row == "" || k == "") next
  key = row " | " t
  if (!(key in seen)) { seen[key] = 1; order[++nrows] = key; units[key] = unit; ups[key] = up; calls[key] = blas }
  vals[key, k] = vals[key, k] " " val }
END { nk = split(kernels, ks, " ")
  printf "\n| measurement | threads |"; for (i = 1; i <= nk; i++) printf " %s |", ks[i]; print " plain / best forced | within 10% |"
  printf "| --- | --- |"; for (i = 1; i <= nk; i++) printf " --- |"; print " --- | --- |"
  bad = 0
  for (r = 1; r <= nrows; r++) { key = order[r]; best = ""; printf "| %s |", key
    for (i = 1; i <= nk; i++) { m[i] = median(vals[key, ks[i]]); printf " %s %s |", m[i], units[key]
      if (i > 1 && m[i] != "" && (best == "" || (ups[key] ? m[i] + 0 > best : m[i] + 0 < best))) best = m[i] + 0 }
    ratio = (best == "" || m[1] == "" || m[1] + 0 == 0) ? "" : (ups[key] ? m[1] / best : best / m[1])
    ok = !calls[key] ? "no BLAS calls" : ratio == "" ? "?" : (ratio >= 0.9 ? "yes" : "NO"); if (ok == "NO" || ok == "?") bad++
    printf " %s | %s |\n", ratio == "" ? "" : sprintf("%.2f", ratio), ok }
  printf "\nMedians of %d interleaved rounds; plain is the kernel users get. Rows that call the BLAS and are not within 10%%: %d. Load average (1 min) at the end: %s.\n", rounds, bad, load }
' "$tmp/all.jsonl" >>"$tmp/summary.md"
fi
cat "$tmp/summary.md" >&2
[ -z "$md" ] || cp "$tmp/summary.md" "$md"
exit $fail
