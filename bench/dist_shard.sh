#!/bin/sh
# The ES update sharded or not over 1, 2 and 4 ranks (one thread each; mpirun on this machine over
# loopback, --oversubscribe when ranks outnumber cores): per generation, rank 0's seconds scoring
# its members (eval_s), in its part of the update (update_s), in collectives (comm_s), the whole
# generation, and the bytes it sent; means over the generations after the first. The update's CPU
# seconds (update_cpu_s) are the work itself, which wall time hides when ranks share cores. Every run must
# end with the bits of the one-process run (checked).
#   usage: bench/dist_shard.sh CACHE [GENS] [POP] [extra train flags...]
set -eu
cache=${1:?usage: bench/dist_shard.sh CACHE [GENS] [POP] [train flags...]}
gens=${2:-6}
pop=${3:-64}
shift $(($# < 3 ? $# : 3))
bin=$(dirname "$0")/../build/esmeta
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi="mpirun --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
args="train --data $cache --trainer es --pop $pop --generations $gens --checkpoint-every 0 --quiet $*"

report() { # name dir
    awk -v name="$1" -F'[:,}]' '
        { for (i = 1; i < NF; i++) {
              if ($i == "\"elapsed_s\"") e = $(i + 1); if ($i == "\"comm_bytes\"") b = $(i + 1)
              if ($i == "\"eval_s\"") ev = $(i + 1); if ($i == "\"update_s\"") up = $(i + 1)
              if ($i == "\"comm_s\"") cm = $(i + 1); if ($i == "\"update_cpu_s\"") uc = $(i + 1) }
          if (NR > 1) { sev += ev; sup += up; scm += cm; suc += uc } }
        NR == 1 { e1 = e }
        END { n = NR - 1; printf "%-24s gen %7.4f s  eval %7.4f s  update %7.4f s (cpu %7.4f s)  comm %7.4f s  %9d bytes sent\n",
                                 name, (e - e1) / n, sev / n, sup / n, suc / n, scm / n, b }' "$2/metrics.jsonl"
}

"$bin" $args --out "$tmp/r1" >/dev/null
report "1 rank" "$tmp/r1"
for n in 2 4; do
    for mode in off on; do
        $mpi -np $n "$bin" $args --shard-update $mode --out "$tmp/r$n$mode" >/dev/null
        report "$n ranks, sharding $mode" "$tmp/r$n$mode"
        cmp -s "$tmp/r1/checkpoint.bin" "$tmp/r$n$mode/checkpoint.bin" || echo "  checkpoint DIFFERS from 1 rank"
    done
done
