#!/bin/bash
# What networking costs a VE's start, and what a live --ipadd costs, printed.
#
#   tests/bench/bench_net.sh [N]
#
# A ved of its own (temporary state directory, socket, --instance vn<pid>) and the
# busybox template; N VEs (default 10, at least 10 for a meaningful median) started
# and stopped in three kinds:
#   none    no address: the veth pair, lo, the gateways and the nftables guard only
#   routed  one IPv4 and one IPv6 address (host routes, guard elements)
#   rate    the same with --rate 100 (tbf, ingress redirect, an ifb)
# For each, the median of `vectl start` (request to running), of its "init" step
# (from the operation's step timestamps: ms resolution) and of the network's own
# setup, which runs alongside the init's setup inside that step (the daemon's debug
# line "network ready in X ms"; the host's idmapped view of the VE's files is
# mounted later, while init execs). Then N live --ipadd (and --ipdel) on a running VE: `vectl set`
# wall time and the PATCH as curl times it.
# Addresses are in 10.23.100.0/24 and fd00:23:100::/64, on this host only.
#
# Needs root, curl, jq. Not a test: it never fails on a slow figure; CI does not run
# it. Everything it makes is removed at the end, also on Ctrl-C.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VED_BUILD:-$REPO/build}
N=${1:-10}
INSTANCE=vn$(($$ % 100000))
T=$(mktemp -d "${TMPDIR:-/var/tmp}/vednetbench.XXXXXX") || exit 1
SOCK=$T/ved.sock
VED_PID=

if [ "$(id -u)" != 0 ]; then
        echo "$0: needs root" >&2
        exit 1
fi
case $N in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac

vectl() { "$BUILD/bin/vectl" --socket "$SOCK" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median()
{
        sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) { print "-"; exit }
                if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

cleanup()
{
        local ctid

        trap - EXIT INT TERM
        if [ -n "$VED_PID" ]; then
                for ctid in $(vectl list -a -j 2>/dev/null | jq -r '.[].ctid' 2>/dev/null); do
                        vectl destroy "$ctid" --force >/dev/null 2>&1
                done
                kill -TERM "$VED_PID" 2>/dev/null
                wait "$VED_PID" 2>/dev/null
        fi
        rm -rf "$T"
        rm -f /run/ved/"$INSTANCE".lock
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BUILD/bin/ved" --foreground --state-dir "$T/state" --socket "$SOCK" --instance "$INSTANCE" \
        --log-level debug >"$T/ved.log" 2>&1 &
VED_PID=$!
for _ in $(seq 100); do
        curl -s -o /dev/null --unix-socket "$SOCK" http://ved/v1/host && break
        sleep 0.1
done
TARBALL=$BUILD/cache/busybox.tar.gz
if [ ! -s "$TARBALL" ]; then
        mkdir -p "$BUILD/cache"
        "$REPO/templates/busybox/build" "$TARBALL" >"$T/template.log" 2>&1 ||
                { echo "building the busybox template failed" >&2; exit 1; }
fi
vectl template import "$TARBALL" --name busybox >/dev/null || exit 1

# step_ms OP_ID STEP: the step's duration, from the step before it.
step_ms()
{
        curl -s --unix-socket "$SOCK" "http://ved/v1/operations/$1" | jq -r --arg step "$2" '
                def ms: sub("Z$"; "") | split(".") as $p |
                        (($p[0] + "Z" | fromdateiso8601) * 1000 + ($p[1] | tonumber));
                .steps as $s | [range(1; $s | length)] |
                map(select($s[.].name == $step)) | first |
                if . == null then empty else ($s[.].at | ms) - ($s[. - 1].at | ms) end'
}

# net_ms CTID: the network's setup in the VE's last start (the daemon's debug line).
net_ms()
{
        grep "ved: VE $1: network ready in" "$T/ved.log" | tail -n 1 |
                sed 's/.* ready in \([0-9.]*\) ms.*/\1/'
}

# bench KIND OPTIONS...: create N VEs with OPTIONS, time start, its init step and
# the network's setup.
bench()
{
        local kind=$1 i ctid t0 op

        shift
        : >"$T/$kind.start"
        : >"$T/$kind.init"
        : >"$T/$kind.net"
        for i in $(seq "$N"); do
                ctid=$((2000 + i))
                vectl create "$ctid" --ostemplate busybox "${@//@/$i}" >/dev/null || return 1
                t0=$(now_ms)
                vectl start "$ctid" >/dev/null || return 1
                echo $(($(now_ms) - t0)) >>"$T/$kind.start"
                op=$(curl -s --unix-socket "$SOCK" "http://ved/v1/operations?ctid=$ctid&limit=1" |
                        jq -r '(.operations // .)[0].id')
                step_ms "$op" init >>"$T/$kind.init"
                net_ms "$ctid" >>"$T/$kind.net"
                vectl destroy "$ctid" --force >/dev/null
        done
}

bench none || exit 1
bench routed --ipadd 10.23.100.@ --ipadd fd00:23:100::@ || exit 1
bench rate --ipadd 10.23.100.@ --ipadd fd00:23:100::@ --rate 100 || exit 1

vectl create 2100 --ostemplate busybox --ipadd 10.23.100.200 >/dev/null
vectl start 2100 >/dev/null
: >"$T/ipadd.cli"
: >"$T/ipadd.http"
: >"$T/ipdel.http"
for i in $(seq "$N"); do
        t0=$(now_ms)
        vectl set 2100 --ipadd "10.23.100.$((100 + i))" >/dev/null
        echo $(($(now_ms) - t0)) >>"$T/ipadd.cli"
        curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" -X PATCH \
                -H 'Content-Type: application/json' \
                -d "{\"ipadd\":[\"fd00:23:100::$((100 + i))\"]}" http://ved/v1/ves/2100 |
                awk '{ printf "%.1f\n", $1 * 1000 }' >>"$T/ipadd.http"
        curl -s -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" -X PATCH \
                -H 'Content-Type: application/json' \
                -d "{\"ipdel\":[\"fd00:23:100::$((100 + i))\"]}" http://ved/v1/ves/2100 |
                awk '{ printf "%.1f\n", $1 * 1000 }' >>"$T/ipdel.http"
done

echo "ved networking, $N VEs each, medians in ms (instance $INSTANCE)"
printf '%-34s %10s %10s %10s\n' "VE start" "start" "init step" "network"
for k in none routed rate; do
        case $k in
        none) label="no address (veth, guard)" ;;
        routed) label="1 IPv4 + 1 IPv6 (routed)" ;;
        rate) label="same + --rate 100 (tbf, ifb)" ;;
        esac
        printf '%-34s %10s %10s %10s\n' "$label" "$(median <"$T/$k.start")" \
                "$(median <"$T/$k.init")" "$(median <"$T/$k.net")"
done
printf '%-34s %10s\n' "--ipadd on a running VE (vectl)" "$(median <"$T/ipadd.cli")"
printf '%-34s %10s\n' "  the same, PATCH ipadd (curl)" "$(median <"$T/ipadd.http")"
printf '%-34s %10s\n' "  PATCH ipdel (curl)" "$(median <"$T/ipdel.http")"

# With and without a network at all, on ve/'s own calls (bench_net_start.c).
if [ -x "$BUILD/tests/bench_net_start" ]; then
        echo
        "$BUILD/tests/bench_net_start" "$N"
else
        echo "(build with -DVED_TESTS=ON for bench_net_start: start with and without network)"
fi
