#!/bin/sh
# Generation time of the ES trainer with 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1
# thread (mpirun on this machine, loopback), the default model (width 64, depth 4, 5-way 5-shot
# 5-query) and P = 32. Prints one line per setup: seconds per generation (mean over the
# generations after the first, from metrics.jsonl) and the bytes rank 0 sent per generation.
#   usage: bench/dist_gen.sh CACHE [GENS] [POP]      (CACHE: from `esmeta prepare`)
set -eu
cache=${1:?usage: bench/dist_gen.sh CACHE [GENS] [POP]}
gens=${2:-21}
pop=${3:-32}
bin=$(dirname "$0")/../build/esmeta
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi="mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
args="train --data $cache --trainer es --pop $pop --generations $gens --checkpoint-every 0 --quiet"

report() { # name dir
    awk -v name="$1" -F'[:,}]' '
        { for (i = 1; i < NF; i++) { if ($i == "\"elapsed_s\"") e = $(i + 1); if ($i == "\"comm_bytes\"") b = $(i + 1) } }
        NR == 1 { e1 = e } END { printf "%-22s %.4f s/generation  %s bytes sent/generation (rank 0)\n",
                                 name, (e - e1) / (NR - 1), b }' "$2/metrics.jsonl"
}

OMP_NUM_THREADS=1 "$bin" $args --out "$tmp/r1t1" >/dev/null
report "1 rank x 1 thread" "$tmp/r1t1"
OMP_NUM_THREADS=2 "$bin" $args --out "$tmp/r1t2" >/dev/null
report "1 rank x 2 threads" "$tmp/r1t2"
OMP_NUM_THREADS=1 $mpi -np 2 "$bin" $args --out "$tmp/r2t1" >/dev/null
report "2 ranks x 1 thread" "$tmp/r2t1"
cmp -s "$tmp/r1t1/checkpoint.bin" "$tmp/r2t1/checkpoint.bin" && cmp -s "$tmp/r1t1/checkpoint.bin" "$tmp/r1t2/checkpoint.bin" \
    && echo "checkpoints: identical bits in all three setups" || echo "checkpoints: DIFFER"
