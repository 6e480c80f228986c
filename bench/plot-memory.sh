#!/bin/sh
# Plots build/bench_memory's JSON lines: peak resident memory against episode size, log-log, for
# ES with streamed episodes, ES without streaming and one backprop step.
#   usage: bench/plot-memory.sh RESULTS.jsonl OUT.png
set -eu
[ $# -eq 2 ] || { echo "usage: bench/plot-memory.sh RESULTS.jsonl OUT.png" >&2; exit 2; }
command -v gnuplot >/dev/null 2>&1 || { echo "plot-memory: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"; }
while read -r l; do
    echo "$(echo "$l" | field images) $(echo "$l" | field es_peak_mib) $(echo "$l" | field backprop_peak_mib)" \
         "$(echo "$l" | field es_whole_peak_mib) $(echo "$l" | field chunk)"
done < "$1" > "$tmp"
chunk=$(awk 'NR == 1 { print $5 }' "$tmp")
gnuplot <<GP
set terminal pngcairo size 720,440 font ",10" noenhanced
set xrange [30:15000]
set output '$2'
set title "Peak resident memory of one step, conv-4 ProtoNet (width 64), 5-way synthetic episodes"
set logscale xy
set grid
set xlabel "episode size (images: support + query)"
set ylabel "peak resident memory (MiB, ru_maxrss)"
set key top left
set format y "%g"
plot '$tmp' using 1:3 with linespoints lw 2 pt 7 title "backprop step (forward + backward + Adam)", \
     '$tmp' using 1:(\$4 > 0 ? \$4 : 1/0) with linespoints lw 2 pt 5 dt 2 title "ES fitness evaluation, whole episode", \
     '$tmp' using 1:2 with linespoints lw 2 pt 9 title "ES fitness evaluation, streamed ($chunk-image chunks)"
GP
echo "plot-memory: wrote $2" >&2
