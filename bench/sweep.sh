#!/bin/sh
# One sweep of the paper's ES hyperparameter studies (Sheng & He 2020): for every value of one
# setting, an ES-ProtoNet run with a fixed budget, then `esmeta eval` of its centre network on the
# test split (1000 episodes and the 95% CI by default), with the training and evaluation times.
# Writes OUT/results.jsonl (one JSON line per point), OUT/table.md (Markdown) and OUT/plot.png
# (test accuracy with CI bars and training time against the swept value); prints the table.
#
# usage: bench/sweep.sh SWEEP [options]
#   SWEEP        pop | width | depth | ranks | shot | way | sigma | lr
#   --values "V1 V2 ..."   the points (defaults below)
#   --generations G        budget per point in generations (default 100)
#   --seconds S            budget per point in wall-clock seconds instead (training is stopped with
#                          SIGINT and saves; the generations reached are reported)
#   --episodes E           test episodes per point (default 1000)
#   --threads T            OpenMP threads in all (default 2; split over the ranks in the ranks sweep)
#   --data PATH            Omniglot folder or cache (default: esmeta's own lookup)
#   --out DIR              (default sweeps/SWEEP)
#   --base "ARGS"          extra `esmeta train` arguments for every point (e.g. "--width 32")
#   --seed S               training seed (default 1); the test episodes always use seed 0
#   --report-only          no runs: rebuild table.md and plot.png from OUT/results.jsonl
#
# Everything not swept keeps `esmeta train --trainer es`'s defaults: width 64, depth 4, 5-way 5-shot
# 5-query, openai-es, P = 32, sigma 0.02, lr 0.002, one episode a generation. The model is evaluated
# on 5-way 5-shot, 15 queries, except in the shot and way sweeps, where it is evaluated on the task
# it was trained for (N-way K-shot, min(15, 20 - K) queries: Omniglot has 20 drawings a class).
#
# Default budgets are sized for the project's 2-core VM: 100 generations of the default model at
# P = 32 take about 1.5 min on one core (0.86 s a generation, docs/BENCHMARKS.md) and 1000 test
# episodes about 1 min, so a 4-point sweep takes 10-15 min (the pop sweep longer: time grows with
# P). Scale up with --generations or --seconds, --episodes and --threads on a bigger machine.
set -eu
usage() { sed -n '8,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
sweep=$1; shift
case $sweep in
pop) values="8 16 32 64"; flag=--pop; xlabel="population size P"; logx=1 ;;
width) values="16 32 64"; flag=--width; xlabel="model width (channels per block)"; logx=1 ;;
depth) values="2 3 4"; flag=--depth; xlabel="model depth (conv blocks)"; logx=0 ;;
ranks) values="1 2"; flag=""; xlabel="MPI ranks"; logx=0 ;;
shot) values="1 5 10"; flag=--shot; xlabel="shots per class (training and test task)"; logx=0 ;;
way) values="5 10 20"; flag=--way; xlabel="classes per episode (training and test task)"; logx=0 ;;
sigma) values="0.005 0.01 0.02 0.05"; flag=--sigma; xlabel="perturbation scale sigma"; logx=1 ;;
lr) values="0.0005 0.001 0.002 0.005"; flag=--lr; xlabel="learning rate (Adam)"; logx=1 ;;
*) echo "sweep.sh: unknown sweep '$sweep'; use pop, width, depth, ranks, shot, way, sigma or lr" >&2; exit 2 ;;
esac
gens=100; seconds=""; episodes=1000; threads=2; data=""; out="sweeps/$sweep"; base=""; seed=1; report_only=0
while [ $# -gt 0 ]; do
    [ "$1" = --report-only ] && { report_only=1; shift; continue; }
    [ $# -ge 2 ] || usage
    case $1 in
    --values) values=$2 ;;
    --generations) gens=$2 ;;
    --seconds) seconds=$2 ;;
    --episodes) episodes=$2 ;;
    --threads) threads=$2 ;;
    --data) data="--data $2" ;;
    --out) out=$2 ;;
    --base) base=$2 ;;
    --seed) seed=$2 ;;
    *) echo "sweep.sh: unknown option $1" >&2; usage ;;
    esac
    shift 2
done
bin=$(cd "$(dirname "$0")/.." && pwd)/build/esmeta
[ -x "$bin" ] || { echo "sweep.sh: $bin is missing; run make first" >&2; exit 1; }
export OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi="mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
now() { date +%s.%N; }
field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"; }
if [ "$report_only" = 1 ]; then
    [ -s "$out/results.jsonl" ] || { echo "sweep.sh: --report-only needs $out/results.jsonl from an earlier run" >&2; exit 1; }
    values=$(field value < "$out/results.jsonl" | tr '\n' ' ')
    gens=$(field generations < "$out/results.jsonl" | head -n 1)
    s1=$(head -n 1 "$out/results.jsonl" | field budget_s)
    [ -n "$s1" ] && seconds=$s1
fi
mkdir -p "$out"
[ "$report_only" = 1 ] || : > "$out/results.jsonl"

[ "$report_only" = 1 ] || for v in $values; do
    run="$out/$sweep-$v"
    rm -rf "$run"
    ranks=1; swept="$flag $v"; way=5; shot=5
    [ "$sweep" = ranks ] && { ranks=$v; swept=""; }
    [ "$sweep" = way ] && way=$v
    [ "$sweep" = shot ] && shot=$v
    query=$((20 - shot < 15 ? 20 - shot : 15))
    tpr=$((threads / ranks > 0 ? threads / ranks : 1))
    launch="$bin"
    [ "$ranks" -gt 1 ] && launch="$mpi -np $ranks $bin"
    if [ -n "$seconds" ]; then budget="--generations 1000000000"; stop="timeout -s INT $seconds"
    else budget="--generations $gens"; stop=""; fi
    # mpirun answers SIGINT by killing its ranks before they can save, so under MPI every rank
    # gets its own timer; the ranks agree on the stop and save together.
    [ "$ranks" -gt 1 ] && [ -n "$stop" ] && { launch="$mpi -np $ranks $stop $bin"; stop=""; }
    t0=$(now)
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$tpr $stop $launch train --trainer es $data --out "$run" $budget --seed "$seed" \
        --checkpoint-every 0 --centre-every 0 --threads "$tpr" --quiet $base $swept >/dev/null ||
        [ -n "$seconds" ] || { echo "sweep.sh: training failed for $sweep=$v" >&2; exit 1; }
    t1=$(now)
    done_gens=$(tail -n 1 "$run/metrics.jsonl" | field generation)
    # shellcheck disable=SC2086
    res=$(OMP_NUM_THREADS=$threads "$bin" eval --checkpoint "$run/checkpoint.bin" $data --split test --way "$way" \
        --shot "$shot" --query "$query" --episodes "$episodes" --seed 0 --threads "$threads")
    t2=$(now)
    acc=$(echo "$res" | field accuracy); ci=$(echo "$res" | field ci95)
    printf '{"sweep":"%s","value":%s,"budget_s":%s,"generations":%s,"train_s":%.1f,"eval_s":%.1f,"test_task":"%d-way %d-shot %d-query","episodes":%d,"accuracy":%s,"ci95":%s,"ranks":%d,"threads":%d,"args":"%s"}\n' \
        "$sweep" "$v" "${seconds:-null}" "$done_gens" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$way" "$shot" "$query" \
        "$episodes" "$acc" "$ci" "$ranks" "$threads" "$base $swept" | tee -a "$out/results.jsonl" >&2
done

{
    echo "Sweep \`$sweep\`: \`bench/sweep.sh $sweep\` with values \"$values\", $([ -n "$seconds" ] && echo "$seconds s" || echo "$gens generations") per point, $episodes test episodes, $threads threads; base args \"$base\"."
    echo
    echo "| $sweep | generations | train s | test task | test accuracy | 95% CI | eval s |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    while read -r line; do
        printf '| %s | %s | %s | %s | %.2f%% | +- %.2f%% | %s |\n' "$(echo "$line" | field value)" \
            "$(echo "$line" | field generations)" "$(echo "$line" | field train_s)" \
            "$(echo "$line" | sed 's/.*"test_task":"\([^"]*\)".*/\1/')" \
            "$(echo "100 * $(echo "$line" | field accuracy)" | bc -l)" "$(echo "100 * $(echo "$line" | field ci95)" | bc -l)" \
            "$(echo "$line" | field eval_s)"
    done < "$out/results.jsonl"
} > "$out/table.md"
cat "$out/table.md"

if command -v gnuplot >/dev/null 2>&1; then
    while read -r line; do
        echo "$(echo "$line" | field value) $(echo "$line" | field accuracy) $(echo "$line" | field ci95) $(echo "$line" | field train_s) $(echo "$line" | field generations)"
    done < "$out/results.jsonl" > "$out/plot.dat"
    # With a wall budget every point trains equally long, so the second axis shows how far it got.
    if [ -n "$seconds" ]; then y2col=5; y2name="generations"; y2label="generations in the budget"
    else y2col=4; y2name="training time"; y2label="training time (s)"; fi
    xtics=$(for v in $values; do printf '"%s" %s,' "$v" "$v"; done | sed 's/,$//')
    gnuplot <<GP
set terminal pngcairo size 800,480 font ",10"
set output '$out/plot.png'
set title "ES-ProtoNet sweep: $sweep ($([ -n "$seconds" ] && echo "$seconds s" || echo "$gens generations") per point)"
set grid
set xlabel "$xlabel"
$([ "$logx" = 1 ] && echo "set logscale x")
set ylabel "test accuracy (%), 95% CI"
set y2label "$y2label"
set y2tics
set ytics nomirror
set key below
set autoscale xfix
set xtics ($xtics)
set offsets graph 0.05, graph 0.05, 0, 0
plot '$out/plot.dat' using 1:(100*\$2):(100*\$3) with yerrorlines lw 2 pt 7 title "test accuracy", \
     '$out/plot.dat' using 1:$y2col axes x1y2 with linespoints dt 2 pt 5 title "$y2name"
GP
    echo "sweep.sh: wrote $out/results.jsonl, $out/table.md, $out/plot.png" >&2
else
    echo "sweep.sh: gnuplot is missing (apt-get install gnuplot-nox); no plot" >&2
fi
