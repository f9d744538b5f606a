#!/bin/bash
# Time ved's VE runtime against LXC's on the same busybox rootfs, and print figures.
#
#   tests/bench/bench_runtime.sh [N]
#
# N VEs (default 20) are created, started, exec'd into, stopped and destroyed one
# after another by a ved of its own (state in a temporary directory, its own socket
# and --instance), N more through the REST API on one kept connection (bench_api,
# built next to ved); then N LXC containers go through the same steps with lxc-*. The
# script prints the median of each step, the ratio ved/LXC and whether the targets
# hold: start <= 1/5 of LXC's, create <= 1/2, exec <= 1/2, memory <= 0.5 MB per VE.
# It is not a test: it never fails on a missed target, and CI does not run it.
#
# Needs root, busybox-static, curl; installs Debian's lxc package when lxc-start is
# missing. Everything it makes (VEs, containers, the daemon, temporary files,
# /var/lib/lxc/<its names>) is removed at the end, also on Ctrl-C.
#
# Environment:
#   VED_BUILD       build directory holding bin/ved and bin/vectl (default $REPO/build)
#   BENCH_INSTANCE  ved's --instance (default vbench, or vb<pid> when vbench is in use)
#   BENCH_EXECS     execs timed per VE and per way (default 5)
#   BENCH_NO_LXC    1 skips LXC (ved's figures only)
#   BENCH_LAYOUT    ved's VEs' layout: image (default) or layered (the template
#                   shared read-only: ve/layer.h)
#   BENCH_RESULTS   a directory to keep the raw samples in (one file per figure)
#   TMPDIR          where the temporary directory goes (default /var/tmp: VE images
#                   are loop-mounted files, so not a tmpfs)
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VED_BUILD:-$REPO/build}
VED_BIN=$BUILD/bin/ved
VECTL_BIN=$BUILD/bin/vectl
API_BIN=$BUILD/tests/bench_api
N=${1:-20}
EXECS=${BENCH_EXECS:-5}
LAYOUT=${BENCH_LAYOUT:-image}
CTID0=1000 # VEs are CTID0+1 .. CTID0+N

if [ "$(id -u)" != 0 ]; then
        echo "$0: needs root (namespaces, loop devices, cgroups, lxc)" >&2
        exit 1
fi
case $N in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac
for tool in curl awk sort; do
        command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 1; }
done
if [ ! -x "$VED_BIN" ] || [ ! -x "$VECTL_BIN" ]; then
        echo "$0: no ved/vectl in $BUILD/bin: build first" \
                "(cmake -S $REPO -B $REPO/build && cmake --build $REPO/build)" >&2
        exit 1
fi

# cgroup v1 has a memory hierarchy of its own; v2 is one tree.
if [ -d /sys/fs/cgroup/memory ]; then
        MEMCG=/sys/fs/cgroup/memory MEM_USAGE=memory.usage_in_bytes
else
        MEMCG=/sys/fs/cgroup MEM_USAGE=memory.current
fi
INSTANCE=${BENCH_INSTANCE:-vbench}
if [ -z "${BENCH_INSTANCE:-}" ] && [ -e "$MEMCG/$INSTANCE" ]; then
        INSTANCE=vb$(($$ % 1000000))
fi

T=$(mktemp -d "${TMPDIR:-/var/tmp}/vedbench.XXXXXX") || exit 1
SOCK=$T/ved.sock
STATE_DIR=$T/state
VED_LOG=$T/ved.log
VED_PID=
VES_MADE=()   # CTIDs ved may hold
LXC_MADE=()   # container names that may exist under /var/lib/lxc
LXC_PATH=/var/lib/lxc
LXC_PREFIX=vedbench$$-
LXC_NOTE=

# --- cleanup ----------------------------------------------------------------

ved_running() { [ -n "$VED_PID" ] && kill -0 "$VED_PID" 2>/dev/null; }

ved_start()
{
        local deadline=$((SECONDS + 15))

        mkdir -p "$STATE_DIR"
        # setsid: a Ctrl-C on the terminal must reach this script, not the daemon,
        # which is still needed to destroy the VEs.
        setsid "$VED_BIN" --foreground --state-dir "$STATE_DIR" --socket "$SOCK" \
                --instance "$INSTANCE" --log-level info >>"$VED_LOG" 2>&1 </dev/null &
        VED_PID=$!
        while [ "$SECONDS" -lt "$deadline" ]; do
                ved_running || break
                curl -s -o /dev/null --max-time 2 --unix-socket "$SOCK" http://ved/v1/host &&
                        return 0
                sleep 0.1
        done
        echo "ved did not start; the end of its log:" >&2
        tail -n 20 "$VED_LOG" | sed 's/^/  | /' >&2
        return 1
}

ved_stop()
{
        local i

        ved_running || return 0
        kill -TERM "$VED_PID"
        for i in $(seq 200); do
                ved_running || break
                sleep 0.1
        done
        ved_running && kill -KILL "$VED_PID"
        wait "$VED_PID" 2>/dev/null
        VED_PID=
}

cleanup()
{
        local rc=$? ctid name

        trap - EXIT INT TERM
        trap '' INT
        if [ ${#VES_MADE[@]} -gt 0 ]; then
                echo "cleaning up ${#VES_MADE[@]} VE(s)" >&2
                # A daemon that died takes its VEs back when it starts again.
                ved_running || ved_start >/dev/null 2>&1
                for ctid in "${VES_MADE[@]}"; do
                        vectl destroy --force "$ctid" >/dev/null 2>&1
                done
        fi
        ved_stop
        [ -d "$MEMCG/vbprobe$$" ] && rmdir "$MEMCG/vbprobe$$" 2>/dev/null
        if [ -e "$MEMCG/$INSTANCE" ]; then
                echo "warning: ved left its cgroup $MEMCG/$INSTANCE behind" >&2
        fi
        if [ ${#LXC_MADE[@]} -gt 0 ]; then
                echo "cleaning up ${#LXC_MADE[@]} LXC container(s)" >&2
                for name in "${LXC_MADE[@]}"; do
                        lxc-stop -n "$name" -k >/dev/null 2>&1
                        lxc-destroy -n "$name" >/dev/null 2>&1
                        rm -rf "${LXC_PATH:?}/$name"
                done
        fi
        # lxc-start leaves an empty lxc.pivot cgroup in every hierarchy: not ours
        # to keep when it was not there before the run.
        if [ "$PIVOT_BEFORE" = 0 ]; then
                for name in /sys/fs/cgroup/*/lxc.pivot /sys/fs/cgroup/lxc.pivot; do
                        [ -d "$name" ] && rmdir "$name" 2>/dev/null
                done
        fi
        if [ -n "${BENCH_RESULTS:-}" ] && [ -d "$T/results" ]; then
                mkdir -p "$BENCH_RESULTS" && cp "$T"/results/* "$BENCH_RESULTS"/ &&
                        echo "raw samples (microseconds, bytes) kept in $BENCH_RESULTS" >&2
        fi
        if grep -q " ${T}/" /proc/mounts 2>/dev/null; then
                echo "warning: mounts left under $T; keeping it" >&2
        else
                rm -rf "$T"
                rm -f /run/ved/"$INSTANCE".lock
        fi
        exit "$rc"
}
PIVOT_BEFORE=$(ls -d /sys/fs/cgroup/*/lxc.pivot /sys/fs/cgroup/lxc.pivot 2>/dev/null | wc -l)
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# --- helpers ----------------------------------------------------------------

vectl() { "$VECTL_BIN" --socket "$SOCK" "$@"; }

now() { date +%s%N; }

# us T0 T1: microseconds between two `date +%s%N` readings.
us() { echo $((($2 - $1) / 1000)); }

# median FILE: the median of the numbers in FILE, one a line ("-" if none).
median()
{
        sort -n "$1" 2>/dev/null | awk '{ v[NR] = $1 }
                END { if (NR == 0) { print "-"; exit }
                      if (NR % 2) print v[(NR + 1) / 2];
                      else printf "%d\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

count() { [ -f "$1" ] && wc -l <"$1" || echo 0; }

# mem_readings: "MemAvailable pinned" in kB, each the median of five readings
# 0.2s apart. The page cache is written back and dropped first (unless
# BENCH_DROP_CACHES=0): the images and rootfs copies just written would otherwise
# swing MemAvailable by more than what 20 VEs use; what a running VE maps stays.
# pinned is the memory in use that dropping every cache cannot give back: all
# that is not free, less the page cache, buffers and reclaimable slab, plus the
# page cache that processes map (their binaries) and tmpfs files. MemAvailable
# counts only half of a small page cache as available (it keeps the low
# watermark in reserve, up to half of the file pages), so after a drop it moves
# with page cache that pinned counts whole or not at all.
mem_readings()
{
        local i

        if [ "${BENCH_DROP_CACHES:-1}" = 1 ]; then
                sync
                echo 3 >/proc/sys/vm/drop_caches
                sleep 1
        fi
        for i in 1 2 3 4 5; do
                awk '{ m[$1] = $2 }
                     END { print m["MemAvailable:"],
                                 m["MemTotal:"] - m["MemFree:"] - m["Cached:"] - m["Buffers:"] \
                                     - m["SReclaimable:"] + m["Mapped:"] + m["Shmem:"] }' /proc/meminfo
                sleep 0.2
        done >"$T/mem"
        echo "$(cut -d' ' -f1 "$T/mem" | sort -n | sed -n 3p)" \
                "$(cut -d' ' -f2 "$T/mem" | sort -n | sed -n 3p)"
}

# cgroup_sum DIR...: the summed memory usage of memory cgroups, in bytes; and in
# CACHE_SUM the page cache part of it.
cgroup_sum()
{
        local d total=0 cache=0 v c

        for d in "$@"; do
                v=$(cat "$d/$MEM_USAGE" 2>/dev/null) || continue
                c=$(awk '$1 == "total_cache" || $1 == "file" { print $2; exit }' \
                        "$d/memory.stat" 2>/dev/null)
                total=$((total + v))
                cache=$((cache + ${c:-0}))
        done
        CACHE_SUM=$cache
        echo "$total"
}

# vectl_exec_ok CTID: vectl exec CTID true worked and true exited 0. (vectl exec
# prints the plain-mode JSON and exits 0 whenever ved ran the command, for now.)
vectl_exec_ok()
{
        local out

        out=$(vectl exec "$1" true 2>/dev/null) || return 1
        [[ $out != *'"exit_code":'[1-9]* ]]
}

# http_exec_ok CTID: POST /v1/ves/CTID/exec, plain mode, answered exit_code 0.
# CURL_US gets the request's time as curl saw it (without curl's own start-up), in
# microseconds.
http_exec_ok()
{
        local out t

        out=$(curl -s --max-time 30 --unix-socket "$SOCK" -H 'Content-Type: application/json' \
                -d '{"command":["true"]}' -w '\n%{time_total}' "http://ved/v1/ves/$1/exec")
        t=${out##*$'\n'}
        out=${out%$'\n'*}
        CURL_US=$(awk -v s="$t" 'BEGIN { printf "%d", s * 1000000 }')
        [[ $out == *'"exit_code":0,'* || $out == *'"exit_code":0}'* ]]
}

# wait_until SECONDS COMMAND...: run COMMAND until it succeeds (no pause between
# tries, to time the moment it first works); fails after SECONDS.
wait_until()
{
        local deadline=$((SECONDS + $1))

        shift
        until "$@"; do
                [ "$SECONDS" -lt "$deadline" ] || return 1
        done
}

R=$T/results # one file per figure: ved.create, lxc.start, ...
mkdir -p "$R"

# timed FIGURE COMMAND...: run COMMAND and, when it succeeds, append its duration
# in microseconds to $R/FIGURE. Returns COMMAND's status.
timed()
{
        local fig=$1 t0 t1 rc

        shift
        t0=$(now)
        "$@"
        rc=$?
        t1=$(now)
        [ "$rc" = 0 ] && us "$t0" "$t1" >>"$R/$fig"
        return "$rc"
}

progress() { printf '  %-28s %s\n' "$1" "$2" >&2; }

# --- ved --------------------------------------------------------------------

ved_start_and_ready() # CTID: vectl start, then exec true until it works
{
        vectl start "$1" >/dev/null 2>&1 && wait_until 30 vectl_exec_ok "$1"
}

ved_start_api_and_ready() # CTID: POST state start, then HTTP exec until it works
{
        local out

        out=$(curl -s --max-time 30 --unix-socket "$SOCK" -H 'Content-Type: application/json' \
                -d '{"action":"start"}' -w '\n%{http_code}' "http://ved/v1/ves/$1/state")
        [ "${out##*$'\n'}" = 202 ] || return 1
        wait_until 30 http_exec_ok "$1"
}

# round PREFIX START STARTFIG STOP MIDDLE NAME...: start every NAME with the
# function START (timed into $R/STARTFIG), run MIDDLE, stop each with STOP (timed
# into $R/PREFIX.stop). The memory is read before the starts, once all run and
# after the stops; both drops go into $R/PREFIX.mem (MemAvailable) and
# $R/PREFIX.pinned (mem_readings), in bytes for all NAMEs.
round()
{
        local pfx=$1 start=$2 startfig=$3 stop=$4 middle=$5 name before running after
        local pbefore prunning pafter

        shift 5
        read -r before pbefore <<<"$(mem_readings)"
        for name in "$@"; do
                timed "$startfig" "$start" "$name" || echo "  start $name failed" >&2
        done
        progress "$startfig" "$(count "$R/$startfig") done"
        sleep 3 # let init and rcS settle
        read -r running prunning <<<"$(mem_readings)"
        "$middle" "$@"
        for name in "$@"; do
                timed "$pfx.stop" "$stop" "$name" >/dev/null 2>&1 ||
                        echo "  stop $name failed" >&2
        done
        read -r after pafter <<<"$(mem_readings)"
        echo $(((before - running) * 1024)) >>"$R/$pfx.mem"
        echo $(((after - running) * 1024)) >>"$R/$pfx.mem"
        echo $(((prunning - pbefore) * 1024)) >>"$R/$pfx.pinned"
        echo $(((prunning - pafter) * 1024)) >>"$R/$pfx.pinned"
        progress "$pfx.stop" "$(count "$R/$pfx.stop") done; MemAvailable $before -> $running" \
                "-> $after kB; pinned $pbefore -> $prunning -> $pafter kB"
}

nothing() { :; }

# ved_middle CTID...: with every VE running, sum their memory cgroups and time execs.
ved_middle()
{
        local ctid cgs=()

        for ctid in "$@"; do
                cgs+=("$MEMCG/$INSTANCE/$ctid")
        done
        cgroup_sum "${cgs[@]}" >"$R/ved.cg_total"
        echo "$CACHE_SUM" >"$R/ved.cg_cache"
        for _ in $(seq "$EXECS"); do
                for ctid in "$@"; do
                        timed ved.exec_vectl vectl_exec_ok "$ctid"
                        timed ved.exec_http http_exec_ok "$ctid" &&
                                echo "$CURL_US" >>"$R/ved.exec_http_rt"
                done
        done
        progress exec "$(count "$R/ved.exec_vectl") vectl, $(count "$R/ved.exec_http") HTTP"
}

ved_stop_ve() { vectl stop "$1"; }

bench_ved()
{
        local i ctid tmpl=$T/busybox.tar.gz left=() ctids=()

        echo "ved: $N VEs, instance $INSTANCE, state in $STATE_DIR" >&2
        ved_start || return 1
        timed ved.template_import vectl template import "$tmpl" --name busybox >/dev/null ||
                { echo "importing the busybox template failed" >&2; return 1; }

        for i in $(seq "$N"); do
                ctid=$((CTID0 + i))
                VES_MADE+=("$ctid")
                if timed ved.create vectl create "$ctid" --ostemplate busybox --layout "$LAYOUT" \
                        >/dev/null 2>&1; then
                        ctids+=("$ctid")
                else
                        echo "  create $ctid failed" >&2
                fi
        done
        progress create "$(count "$R/ved.create") done"
        [ ${#ctids[@]} -gt 0 ] || return 1

        round ved ved_start_and_ready ved.start ved_stop_ve ved_middle "${ctids[@]}"
        # Again through the API alone (no vectl processes), as a panel would.
        round ved ved_start_api_and_ready ved.start_http ved_stop_ve nothing "${ctids[@]}"

        for ctid in "${VES_MADE[@]}"; do
                if ! timed ved.destroy vectl destroy "$ctid" >/dev/null 2>&1; then
                        echo "  destroy $ctid failed" >&2
                        left+=("$ctid")
                fi
        done
        VES_MADE=("${left[@]}")
        progress destroy "$(count "$R/ved.destroy") done"
        bench_api_round
        ved_stop
}

# As a hosting panel drives ved: the REST API on one kept connection, each step
# timed inside the client (tests/bench/bench_api.c), on VEs of its own.
bench_api_round()
{
        local i keep=("${VES_MADE[@]}")

        if [ ! -x "$API_BIN" ]; then
                echo "  no $API_BIN: build it (cmake --build build) for the API figures" >&2
                return 0
        fi
        for i in $(seq "$N"); do
                VES_MADE+=($((CTID0 + N + i)))
        done
        if "$API_BIN" "$SOCK" "$R" $((CTID0 + N)) "$N" busybox "$LAYOUT"; then
                VES_MADE=("${keep[@]}")
        fi
        progress "API, one connection" "$(count "$R/api.create") created, $(count "$R/api.start") started, $(count "$R/api.destroy") destroyed"
}

# --- LXC --------------------------------------------------------------------

lxc_install()
{
        command -v lxc-start >/dev/null && return 0
        echo "installing lxc (apt-get install -y lxc)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y lxc >"$T/apt.log" 2>&1 ||
                { apt-get update >>"$T/apt.log" 2>&1 &&
                  DEBIAN_FRONTEND=noninteractive apt-get install -y lxc >>"$T/apt.log" 2>&1; }
        command -v lxc-start >/dev/null
}

# lxc_create NAME: what `lxc-create -t none -B dir` plus a template would do: copy
# the rootfs into the container's directory and write its config.
lxc_create()
{
        local name=$1 dir=$LXC_PATH/$1

        mkdir "$dir" || return 1
        cp -a "$T/rootfs" "$dir/rootfs" || return 1
        cat >"$dir/config" <<EOF
lxc.include = /usr/share/lxc/config/common.conf
lxc.apparmor.profile = unconfined
lxc.rootfs.path = dir:$dir/rootfs
lxc.uts.name = $name
lxc.net.0.type = empty
lxc.init.cmd = /sbin/init
EOF
}

lxc_attach_ok() { lxc-attach -n "$1" -- true 2>/dev/null; }

lxc_start_and_ready()
{
        lxc-start -n "$1" -d -o "$T/lxc-$1.log" && wait_until 30 lxc_attach_ok "$1"
}

# lxc_middle NAME...: with every container running, sum their memory cgroups and
# time lxc-attach.
lxc_middle()
{
        local name cgs=()

        for name in "$@"; do
                cgs+=("$MEMCG/lxc.payload.$name")
        done
        cgroup_sum "${cgs[@]}" >"$R/lxc.cg_total"
        echo "$CACHE_SUM" >"$R/lxc.cg_cache"
        for _ in $(seq "$EXECS"); do
                for name in "$@"; do
                        timed lxc.exec lxc_attach_ok "$name"
                done
        done
        progress exec "$(count "$R/lxc.exec") lxc-attach"
}

lxc_stop_ct() { lxc-stop -n "$1"; }

bench_lxc()
{
        local i name left=() names=()

        if [ "${BENCH_NO_LXC:-0}" = 1 ]; then
                LXC_NOTE="skipped (BENCH_NO_LXC=1)"
                return 0
        fi
        if ! lxc_install; then
                LXC_NOTE="lxc could not be installed (apt-get install lxc failed)"
                return 1
        fi
        echo "LXC $(lxc-start --version): $N containers under $LXC_PATH/$LXC_PREFIX*" >&2
        mkdir "$T/rootfs" && tar -C "$T/rootfs" -xzf "$T/busybox.tar.gz" || return 1

        for i in $(seq "$N"); do
                name=$LXC_PREFIX$i
                LXC_MADE+=("$name")
                if timed lxc.create lxc_create "$name"; then
                        names+=("$name")
                else
                        echo "  create $name failed" >&2
                fi
        done
        progress create "$(count "$R/lxc.create") done"
        [ ${#names[@]} -gt 0 ] || return 1

        # Does LXC run here at all?
        if ! lxc_start_and_ready "${names[0]}" || ! lxc-stop -n "${names[0]}" -k; then
                LXC_NOTE="lxc-start fails on this host: $(tail -n 3 \
                        "$T/lxc-${names[0]}.log" 2>/dev/null | tr '\n' ' ')"
                return 1
        fi
        rm -f "$T/lxc-${names[0]}.log"

        round lxc lxc_start_and_ready lxc.start lxc_stop_ct lxc_middle "${names[@]}"
        round lxc lxc_start_and_ready lxc.start lxc_stop_ct nothing "${names[@]}"

        for name in "${LXC_MADE[@]}"; do
                if ! timed lxc.destroy lxc-destroy -n "$name" >/dev/null 2>&1; then
                        echo "  destroy $name failed" >&2
                        left+=("$name")
                fi
        done
        LXC_MADE=("${left[@]}")
        progress destroy "$(count "$R/lxc.destroy") done"
}

# --- the report -------------------------------------------------------------

ms() { awk -v u="$1" 'BEGIN { if (u == "-") print "-"; else printf "%.1f ms", u / 1000 }'; }
mb() { awk -v b="$1" 'BEGIN { if (b == "-") print "-"; else printf "%.2f MB", b / 1048576 }'; }

# row LABEL VED LXC FORMAT TARGET_RATIO: one line of the table; TARGET_RATIO empty
# for no target.
row()
{
        local label=$1 v=$2 l=$3 fmt=$4 target=$5 ratio=- met=

        if [ "$v" != - ] && [ "$l" != - ] && [ "$l" -gt 0 ] 2>/dev/null; then
                ratio=$(awk -v a="$v" -v b="$l" 'BEGIN { printf "%.2f", a / b }')
        fi
        if [ -n "$target" ]; then
                if [ "$ratio" = - ]; then
                        met="<= $target of LXC: no LXC figure"
                elif awk -v r="$ratio" -v t="$target" 'BEGIN { exit !(r <= t) }'; then
                        met="<= $target of LXC: met"
                else
                        met="<= $target of LXC: NOT met"
                fi
        fi
        printf '%-24s %12s %12s %8s   %s\n' "$label" "$($fmt "$v")" "$($fmt "$l")" "$ratio" "$met"
}

per_ve_median() # FILE: the median of its numbers divided by N, or -
{
        local m

        m=$(median "$1")
        [ "$m" = - ] && echo - || echo $((m / N))
}

per_ve() # FILE: its number divided by N, or -
{
        [ -s "$1" ] && echo $(($(cat "$1") / N)) || echo -
}

mem_row()
{
        local label=$1 v=$2 l=$3 met

        if [ "$v" = - ]; then
                met="<= 0.5 MB: no figure"
        elif [ "$v" -lt 0 ]; then
                met="<= 0.5 MB: unclear (the host's own use moved more than the VEs')"
        elif [ "$v" -le 524288 ]; then
                met="<= 0.5 MB: met"
        else
                met="<= 0.5 MB: NOT met"
        fi
        printf '%-24s %12s %12s %8s   %s\n' "$label" "$(mb "$v")" "$(mb "$l")" \
                "$(awk -v a="$v" -v b="$l" 'BEGIN { if (a != "-" && b > 0) printf "%.2f", a / b; else print "-" }')" \
                "$met"
}

report()
{
        local t0 t1 i f

        # What one `date +%s%N` reading adds to every interval.
        for i in $(seq 20); do
                t0=$(now)
                t1=$(now)
                us "$t0" "$t1" >>"$R/timer"
        done
        echo
        echo "ved $(git -C "$REPO" describe --always --dirty 2>/dev/null) (layout $LAYOUT) vs LXC" \
                "$( (lxc-start --version) 2>/dev/null || echo -); $N VEs; kernel $(uname -r);" \
                "$(nproc) CPUs; cgroup $([ "$MEMCG" = /sys/fs/cgroup ] && echo v2 || echo v1)"
        echo "medians; each interval includes ~$(ms "$(median "$R/timer")") of timer overhead"
        [ -s "$R/attach" ] &&
                echo "this host moves a process into a cgroup after a pause in" \
                        "$(ms "$(median "$R/attach")") (> 2 ms: it waits for an RCU grace" \
                        "period, as on a fresh boot of a cgroup v1 host; LXC pays that" \
                        "several times per start, ved once at most)"
        [ -n "$LXC_NOTE" ] && echo "LXC: $LXC_NOTE"
        echo
        printf '%-24s %12s %12s %8s   %s\n' operation ved LXC ved/LXC target
        row "create" "$(median "$R/ved.create")" "$(median "$R/lxc.create")" ms 0.5
        row "start (vectl)" "$(median "$R/ved.start")" "$(median "$R/lxc.start")" ms 0.2
        row "start (HTTP)" "$(median "$R/ved.start_http")" "$(median "$R/lxc.start")" ms 0.2
        row "exec true (vectl)" "$(median "$R/ved.exec_vectl")" "$(median "$R/lxc.exec")" ms 0.5
        row "exec true (HTTP)" "$(median "$R/ved.exec_http")" "$(median "$R/lxc.exec")" ms 0.5
        row "exec true (HTTP r/t)" "$(median "$R/ved.exec_http_rt")" "$(median "$R/lxc.exec")" ms ""
        row "stop" "$(median "$R/ved.stop")" "$(median "$R/lxc.stop")" ms ""
        row "destroy" "$(median "$R/ved.destroy")" "$(median "$R/lxc.destroy")" ms ""
        row "create (API)" "$(median "$R/api.create")" "$(median "$R/lxc.create")" ms 0.5
        row "start (API)" "$(median "$R/api.start")" "$(median "$R/lxc.start")" ms 0.2
        row "exec true (API)" "$(median "$R/api.exec")" "$(median "$R/lxc.exec")" ms 0.5
        row "stop (API)" "$(median "$R/api.stop")" "$(median "$R/lxc.stop")" ms ""
        row "destroy (API)" "$(median "$R/api.destroy")" "$(median "$R/lxc.destroy")" ms ""
        mem_row "memory/VE (MemAvail)" "$(per_ve_median "$R/ved.mem")" "$(per_ve_median "$R/lxc.mem")"
        mem_row "memory/VE (pinned)" "$(per_ve_median "$R/ved.pinned")" "$(per_ve_median "$R/lxc.pinned")"
        mem_row "memory/VE (cgroup)" "$(per_ve "$R/ved.cg_total")" "$(per_ve "$R/lxc.cg_total")"
        echo
        echo "samples: $(for f in ved.create ved.start ved.start_http ved.exec_vectl ved.exec_http \
                ved.stop ved.destroy api.create api.start api.exec lxc.create lxc.start lxc.exec lxc.stop lxc.destroy; do
                printf '%s=%s ' "$f" "$(count "$R/$f")"; done)"
        echo "start: from the start request until an exec of true in the VE succeeds" \
                "(vectl start + vectl exec; POST state + POST exec; lxc-start -d + lxc-attach)"
        echo "create: ved clones the golden image (vectl create, 2G diskspace; layout $LAYOUT:" \
                "layered clones an empty image and shares the template's read-only);" \
                "LXC: cp -a of the rootfs + config (privileged container, no user namespace)"
        echo "exec true (HTTP r/t): the same requests timed by curl itself (-w time_total)," \
                "without starting a process: the daemon's own latency"
        echo "(API): bench_api, the REST API on one kept connection as a panel drives it," \
                "timed in the client; create and destroy include the wait for their operation," \
                "start includes POST exec [true] until it answers exit_code 0"
        echo "start (API) in parts: POST until the 202 $(ms "$(median "$R/api.start-post")")," \
                "the operation's wait $(ms "$(median "$R/api.start-wait")")," \
                "the execs until one answers 0 $(ms "$(median "$R/api.start-exec")")"
        echo "memory: median drop of MemAvailable between all stopped and all running" \
                "(2 rounds, before start and after stop; page cache dropped before each" \
                "reading) / $N; pinned: the same for the memory in use that no cache drop" \
                "gives back (MemTotal - MemFree - Cached - Buffers - SReclaimable + Mapped" \
                "+ Shmem); cgroup: summed $MEM_USAGE / $N"
        echo "cgroup memory/VE includes page cache: ved $(mb "$(per_ve "$R/ved.cg_cache")")," \
                "LXC $(mb "$(per_ve "$R/lxc.cg_cache")")"
        for f in ved lxc; do
                [ -s "$R/$f.mem" ] || continue
                echo "$f: MemAvailable drops per VE, one per start and stop of all:" \
                        "$(sort -n "$R/$f.mem" | while read -r b; do mb $((b / N)); echo -n ' '; done)"
                echo "$f: pinned rises per VE, one per start and stop of all:" \
                        "$(sort -n "$R/$f.pinned" | while read -r b; do mb $((b / N)); echo -n ' '; done)"
        done
        [ -s "$R/ved.template_import" ] &&
                echo "template import (vectl template import): $(ms "$(cat "$R/ved.template_import")")"
}

# The host's cost of moving a process into a cgroup after a pause, timed with
# bash's own clock: a cgroup v1 host waits for an RCU grace period (5-20 ms) at the
# first move after a pause, as the kernel switches its threadgroup lock, unless the
# cgroup2 option favordynmods was ever on since boot (~0.05 ms; Linux 6.18 keeps
# that mode until reboot). Each ved start pays that wait once, or less (its
# prewarm), LXC's several times: the report says which host this was.
attach_probe()
{
        local dir=$MEMCG/vbprobe$$ i t0 t1 pid

        mkdir "$dir" 2>/dev/null || return 0
        for i in 1 2 3; do
                sleep 0.3
                # Without the script's traps: killed before its exec, a forked copy
                # of this shell would run cleanup().
                (trap - EXIT INT TERM && exec sleep 5) &
                pid=$!
                t0=${EPOCHREALTIME/./}
                echo "$pid" >"$dir/cgroup.procs"
                t1=${EPOCHREALTIME/./}
                echo $((t1 - t0)) >>"$R/attach"
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        done
        rmdir "$dir" 2>/dev/null
}

# --- main -------------------------------------------------------------------

echo "building the busybox template" >&2
if ! bash "$REPO/templates/busybox/build" "$T/busybox.tar.gz" >"$T/template.log" 2>&1; then
        echo "building the busybox template failed:" >&2
        tail -n 20 "$T/template.log" >&2
        exit 1
fi
attach_probe
bench_ved || echo "the ved run stopped early; its log is $VED_LOG" >&2
bench_lxc || echo "the LXC run stopped early${LXC_NOTE:+: $LXC_NOTE}" >&2
report
