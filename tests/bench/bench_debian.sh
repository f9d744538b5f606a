#!/bin/bash
# Time Debian 12 VEs: create, start (until systemd reports "running"), stop and
# destroy, N VEs one after another (default 10), with LXC's dir-backed create (a
# `cp -a` of the same tree, which is what lxc-create -B dir does with a template's
# rootfs) timed in the same run; print the medians and the ratio ved/LXC for create.
# It is not a test: it never fails on a missed target, and CI does not run it.
#
#   tests/bench/bench_debian.sh [N]
#
# Needs root, curl, jq and the Debian template tarball: $VED_BUILD/cache/
# debian-12-x86_64.tar.zst (tests/integration/test_debian.sh leaves it there), else
# it is built with templates/debian/build (debootstrap, a few minutes).
# Everything it makes (the daemon of its own, VEs, the copied trees) is removed at the
# end, also on Ctrl-C.
#
# Environment:
#   VED_BUILD   build directory holding bin/ved and bin/vectl (default $REPO/build)
#   TMPDIR      where the state directory goes (default /var/tmp; not a tmpfs)
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VED_BUILD:-$REPO/build}
N=${1:-10}
CTID0=2000
TEMPLATE=debian-12-x86_64
TARBALL=$BUILD/cache/$TEMPLATE.tar.zst

[ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 1; }
case $N in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac

W=$(mktemp -d "${TMPDIR:-/var/tmp}/ved-bench-debian.XXXXXX")
SOCK=$W/ved.sock
INSTANCE=vd$(($$ % 100000))
VED_PID=

vectl() { "$BUILD/bin/vectl" --socket "$SOCK" "$@"; }
now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }

cleanup()
{
        trap - EXIT INT TERM
        if [ -n "$VED_PID" ]; then
                for i in $(seq 1 "$N"); do
                        vectl destroy $((CTID0 + i)) --force >/dev/null 2>&1
                done
                kill "$VED_PID" 2>/dev/null
                wait "$VED_PID" 2>/dev/null
        fi
        mountpoint -q "$W/golden" && umount "$W/golden"
        rmdir /sys/fs/cgroup/*/"$INSTANCE"/helpers /sys/fs/cgroup/*/"$INSTANCE" 2>/dev/null
        rm -rf "$W"
        rm -f /run/ved/"$INSTANCE".lock
}
trap cleanup EXIT
trap 'exit 130' INT TERM

median()
{
        sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

if [ ! -s "$TARBALL" ]; then
        mkdir -p "$BUILD/cache"
        "$REPO/templates/debian/build" "$TARBALL" || exit 1
fi

"$BUILD/bin/ved" --foreground --state-dir "$W/state" --socket "$SOCK" --instance "$INSTANCE" \
        --template-recipes "$REPO/templates" >"$W/ved.log" 2>&1 &
VED_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && vectl list >/dev/null 2>&1 && break; sleep 0.1; done
vectl template import "$TARBALL" --name "$TEMPLATE" >/dev/null || exit 1

for i in $(seq 1 "$N"); do
        ct=$((CTID0 + i))
        t0=$(now)
        vectl create "$ct" --ostemplate "$TEMPLATE" >/dev/null || { echo "create $ct failed"; exit 1; }
        t1=$(now)
        vectl start "$ct" >/dev/null || { echo "start $ct failed"; exit 1; }
        until [ "$(vectl exec "$ct" systemctl is-system-running 2>/dev/null)" = running ]; do
                [ $(ms "$t1" "$(now)") -gt 120000 ] && { echo "VE $ct not running"; exit 1; }
                sleep 0.05
        done
        t2=$(now)
        vectl stop "$ct" >/dev/null || { echo "stop $ct failed"; exit 1; }
        t3=$(now)
        vectl destroy "$ct" >/dev/null || { echo "destroy $ct failed"; exit 1; }
        t4=$(now)
        echo "$(ms "$t0" "$t1")" >>"$W/create"
        echo "$(ms "$t1" "$t2")" >>"$W/start"
        echo "$(ms "$t2" "$t3")" >>"$W/stop"
        echo "$(ms "$t3" "$t4")" >>"$W/destroy"
        printf 'VE %d: create %d ms, start %d ms, stop %d ms, destroy %d ms\n' "$ct" \
                "$(ms "$t0" "$t1")" "$(ms "$t1" "$t2")" "$(ms "$t2" "$t3")" "$(ms "$t3" "$t4")"
done

# LXC's dir backend: the template's tree copied with cp -a, N times, the page cache
# dropped first each time as for a VE created from a template not read lately.
mkdir -p "$W/golden"
mount -o ro,loop "$W/state/templates/$TEMPLATE.img" "$W/golden" || exit 1
TREE=$(du -sm "$W/golden" | cut -f1)
for i in $(seq 1 "$N"); do
        sync
        echo 3 >/proc/sys/vm/drop_caches
        t0=$(now)
        cp -a "$W/golden" "$W/lxc-rootfs" && sync -f "$W/lxc-rootfs"
        t1=$(now)
        echo "$(ms "$t0" "$t1")" >>"$W/lxc"
        rm -rf "$W/lxc-rootfs"
done
umount "$W/golden"

c=$(median <"$W/create")
l=$(median <"$W/lxc")
echo
echo "Debian 12 VEs, $N of each, medians (ms); the tree is $TREE MB:"
printf '  %-34s %8s\n' "ved create (clone of the image)" "$c"
printf '  %-34s %8s\n' "LXC dir create (cp -a + sync)" "$l"
printf '  %-34s %8s\n' "ved start until 'running'" "$(median <"$W/start")"
printf '  %-34s %8s\n' "ved stop (SIGRTMIN+3)" "$(median <"$W/stop")"
printf '  %-34s %8s\n' "ved destroy" "$(median <"$W/destroy")"
echo "  create ratio ved/LXC: $(echo "scale=3; $c / $l" | bc) (target <= 0.1)"
