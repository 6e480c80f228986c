#!/bin/sh
# Short ES-ProtoNet runs of several configurations for the same wall-clock budget each, then the
# validation accuracy of each centre network (5-way 5-shot, 200 episodes): a quick way to choose
# settings before a long run. Prints one JSON line per configuration.
# usage: bench/es-pilot.sh DATA SECONDS_PER_RUN OUTDIR   (configurations are listed below)
set -eu
data=$1; budget=$2; outdir=$3
bin=$(dirname "$0")/../build/esmeta
mkdir -p "$outdir"
export OMP_WAIT_POLICY=PASSIVE
while read -r name args; do
    [ -n "$name" ] || continue
    rm -rf "$outdir/$name"
    # shellcheck disable=SC2086
    timeout -s INT "$budget" "$bin" train --trainer es --data "$data" --out "$outdir/$name" --generations 1000000 \
        --centre-every 0 --checkpoint-every 100 --quiet $args >/dev/null || true
    gens=$(tail -n 1 "$outdir/$name/metrics.jsonl" | sed 's/.*"generation":\([0-9]*\).*/\1/')
    acc=$("$bin" eval --checkpoint "$outdir/$name/checkpoint.bin" --data "$data" --split val --episodes 200 |
        sed 's/.*"accuracy":\([0-9.]*\).*/\1/')
    echo "{\"config\":\"$name\",\"args\":\"$args\",\"seconds\":$budget,\"generations\":$gens,\"val_5w5s\":$acc}"
done <<'CONFIGS'
oes-w32-p64-s02-lr5 --strategy openai-es --width 32 --pop 64 --sigma 0.02 --lr 0.005
oes-w32-p64-s02-lr2 --strategy openai-es --width 32 --pop 64 --sigma 0.02 --lr 0.002
oes-w64-p32-s02-lr2 --strategy openai-es --width 64 --pop 32 --sigma 0.02 --lr 0.002
pgpe-w32-p64-s02 --strategy pgpe --width 32 --pop 64 --sigma 0.02 --lr 0.005
CONFIGS
