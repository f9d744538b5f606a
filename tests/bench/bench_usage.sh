#!/bin/bash
# How long listing the usage of N running VEs takes through the API (issue 6:
# at most 50 ms for 200), and /metrics for the same VEs. Prints figures; never
# fails on a slow result.
#
#   tests/bench/bench_usage.sh [N]        (default 200; needs root)
#
# A ved of its own (--instance vusage, state in a temporary directory under
# /var/tmp) imports the busybox template, creates and starts N VEs with a few
# limits each, then times GET /v1/usage and GET /metrics (curl's time_total,
# BENCH_ROUNDS rounds, default 30; the median and the worst are printed), and
# GET /v1/ves/{ctid}/usage of one VE. Everything is destroyed at the end, also on
# Ctrl-C.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VED_BUILD:-$REPO/build}
N=${1:-200}
ROUNDS=${BENCH_ROUNDS:-30}
CTID0=5000

if [ "$(id -u)" != 0 ]; then
        echo "$0: needs root" >&2
        exit 1
fi
case $N in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac
[ -x "$BUILD/bin/ved" ] || { echo "$0: build first (no $BUILD/bin/ved)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/var/tmp}/vedbench-usage.XXXXXX") || exit 1
SOCK=$T/ved.sock
INSTANCE=vusage
VED_PID=

api() { curl -s --max-time 600 --unix-socket "$SOCK" "$@"; }
vectl() { "$BUILD/bin/vectl" --socket "$SOCK" "$@"; }

cleanup()
{
        trap - EXIT INT TERM
        if [ -n "$VED_PID" ] && kill -0 "$VED_PID" 2>/dev/null; then
                echo "destroying the VEs ..."
                for i in $(seq 1 "$N"); do
                        batch api -X DELETE "http://ved/v1/ves/$((CTID0 + i))?force=true" -o /dev/null
                done
                wait_batch
                for _ in $(seq 1 120); do
                        [ "$(api http://ved/v1/ves | jq '.ves | length')" = 0 ] && break
                        sleep 1
                done
                kill "$VED_PID"
                wait "$VED_PID" 2>/dev/null
        fi
        rm -rf "$T"
        rm -f /run/ved/"$INSTANCE".lock
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# batch CMD...: run in the background, at most 32 at a time (wait_batch waits for
# them; a bare wait would wait for the daemon too).
BATCH=()
batch() { "$@" & BATCH+=($!); (( ${#BATCH[@]} < 32 )) || wait_batch; }
wait_batch() { ((${#BATCH[@]})) && wait "${BATCH[@]}"; BATCH=(); }

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }
worst() { sort -n | tail -n 1; }

"$BUILD/bin/ved" --foreground --state-dir "$T/state" --socket "$SOCK" --instance "$INSTANCE" \
        >"$T/ved.log" 2>&1 &
VED_PID=$!
for _ in $(seq 1 50); do api -o /dev/null http://ved/v1/host && break; sleep 0.1; done

"$REPO/templates/busybox/build" "$T/busybox.tar.gz" >/dev/null || exit 1
vectl template import "$T/busybox.tar.gz" --name busybox >/dev/null || exit 1

echo "creating and starting $N VEs ..."
start=$(date +%s)
for i in $(seq 1 "$N"); do
        batch api -o /dev/null -X POST http://ved/v1/ves -H 'Content-Type: application/json' \
                -d "{\"ctid\":$((CTID0 + i)),\"ostemplate\":\"busybox\",\"ram\":\"128M\",\"numproc\":100,\"diskspace\":\"1G\"}"
done
wait_batch
for _ in $(seq 1 300); do
        [ "$(api 'http://ved/v1/ves?state=stopped' | jq '.ves | length')" = "$N" ] && break
        sleep 1
done
for i in $(seq 1 "$N"); do
        batch api -o /dev/null -X POST "http://ved/v1/ves/$((CTID0 + i))/state" \
                -H 'Content-Type: application/json' -d '{"action":"start"}'
done
wait_batch
for _ in $(seq 1 300); do
        running=$(api 'http://ved/v1/ves?state=running' | jq '.ves | length')
        [ "$running" = "$N" ] && break
        sleep 1
done
echo "$running VEs running after $(($(date +%s) - start)) s"
sleep 2 # a sample of each for the CPU figures

time_of() # PATH: curl's time_total in ms, ROUNDS times
{
        for _ in $(seq 1 "$ROUNDS"); do
                api -o /dev/null -w '%{time_total}\n' "http://ved$1" |
                        awk '{ printf "%.2f\n", $1 * 1000 }'
        done
}

list=$(time_of /v1/usage)
metrics=$(time_of /metrics)
one=$(time_of "/v1/ves/$((CTID0 + 1))/usage")
size=$(api http://ved/v1/usage | wc -c)
msize=$(api http://ved/metrics | wc -c)

echo
printf '%-34s %10s %10s\n' "request ($running running VEs)" "median ms" "worst ms"
printf '%-34s %10s %10s\n' "GET /v1/usage ($size bytes)" "$(median <<<"$list")" "$(worst <<<"$list")"
printf '%-34s %10s %10s\n' "GET /metrics ($msize bytes)" "$(median <<<"$metrics")" "$(worst <<<"$metrics")"
printf '%-34s %10s %10s\n' "GET /v1/ves/{ctid}/usage" "$(median <<<"$one")" "$(worst <<<"$one")"
echo "target: GET /v1/usage of 200 running VEs in at most 50 ms"
