#!/usr/bin/env bash
# Resource limits on real VEs (issue 6): each limit is enforced by the kernel, changed
# live, kept across a daemon restart and a VE restart, and visible through the API
# (usage, /metrics, events), vectl list and inside the VE (free, df, /proc).
#
#   bash tests/integration/test_quota.sh      (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=qt$(($$ % 100000))

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi

test_cleanup()
{
        # The stand-in over lxcfs's binary (the case "an lxcfs that does not come back").
        [ -n "${LXCFS_FAKED:-}" ] && umount "$LXCFS_FAKED" 2>/dev/null
        ves_teardown_all
}

if [ -d /sys/fs/cgroup/memory ]; then
        CG=v1
        cgfile() { cat "/sys/fs/cgroup/$1/$INSTANCE/$2/$3" 2>/dev/null; }
else
        CG=v2
        cgfile() { cat "/sys/fs/cgroup/$INSTANCE/$2/$3" 2>/dev/null; }
fi

# cpu_ns CTID: CPU time of the VE's cgroup in nanoseconds.
cpu_ns()
{
        if [ "$CG" = v1 ]; then
                cgfile cpuacct "$1" cpuacct.usage
        else
                echo $(($(cgfile - "$1" cpu.stat | awk '$1 == "usage_usec" { print $2 }') * 1000))
        fi
}

# limits_of CTID: the cgroup's limits as "ram numproc cpuquota shares".
limits_of()
{
        if [ "$CG" = v1 ]; then
                echo "$(cgfile memory "$1" memory.limit_in_bytes) $(cgfile pids "$1" pids.max)" \
                        "$(cgfile cpu "$1" cpu.cfs_quota_us) $(cgfile cpu "$1" cpu.shares)"
        else
                echo "$(cgfile - "$1" memory.max) $(cgfile - "$1" pids.max)" \
                        "$(cgfile - "$1" cpu.max | cut -d' ' -f1) $(cgfile - "$1" cpu.weight)"
        fi
}

# pids_now CTID: processes in the VE's cgroup now.
pids_now()
{
        if [ "$CG" = v1 ]; then cgfile pids "$1" pids.current; else cgfile - "$1" pids.current; fi
}
pids_at_least() { [ "$(pids_now "$1")" -ge "$2" ] 2>/dev/null; }
pids_at_most() { [ "$(pids_now "$1")" -le "$2" ] 2>/dev/null; }

# within VALUE TARGET PERCENT: VALUE is TARGET +- PERCENT %.
within()
{
        awk -v v="$1" -v t="$2" -v p="$3" 'BEGIN { d = v - t; if (d < 0) d = -d; exit !(d <= t * p / 100) }'
}

ved_start || { fail "the daemon starts"; finish; }
ensure_template || { fail "the busybox template imports"; finish; }

# --- limits at create, as the kernel holds them --------------------------------

begin_case "create with every limit: the VE's cgroup holds them once it runs"
OUT=$(vectl create 301 --ostemplate "$TEMPLATE" --ram 256M --swap 64M --cpus 1 --cpulimit 50% \
        --cpuunits 2000 --numproc 64 --iolimit 10M --iopslimit 200 --diskspace 512M 2>&1)
assert_eq "$?" 0 "vectl create ($OUT)"
OUT=$(vectl start 301 2>&1)
assert_eq "$?" 0 "vectl start ($OUT)"
if [ "$CG" = v1 ]; then
        assert_eq "$(limits_of 301)" "268435456 64 50000 2048" "ram numproc cfs_quota shares"
        assert_eq "$(cgfile memory 301 memory.memsw.limit_in_bytes)" $((320 << 20)) "memsw = ram + swap"
        assert_match "$(cgfile blkio 301 blkio.throttle.write_bps_device)" '^[0-9]+:[0-9]+ 10485760$' \
                "write bps on the VE's loop device"
        assert_match "$(cgfile blkio 301 blkio.throttle.read_iops_device)" '^[0-9]+:[0-9]+ 200$' \
                "read iops on the VE's loop device"
        assert_match "$(cgfile cpuset 301 cpuset.cpus)" '^[0-9]+$' "one CPU in cpuset.cpus"
else
        assert_eq "$(limits_of 301)" "268435456 64 50000 200" "memory.max pids.max cpu.max weight"
fi
LOOPDEV=$(losetup -j "$STATE_DIR/ves/301/root.img" | cut -d: -f1)
assert_match "$(cgfile blkio 301 blkio.throttle.write_bps_device)" "^$(lsblk -dno MAJ:MIN "$LOOPDEV" | tr -d ' ') " \
        "the throttled device is the VE's own loop device ($LOOPDEV)"

begin_case "GET /v1/ves/301/usage: memory, cpu, processes, disk and io"
sleep 1.5 # one sample for the CPU figure
api GET /v1/ves/301/usage
assert_status 200
assert_json '.memory.limit' 268435456
assert_json '.memory.current > 0' true
assert_json '.processes.limit' 64
assert_json '.processes.current >= 1' true
assert_json '.cpu.time_ns > 0' true
assert_json '.cpu.usage_percent | type' number
assert_json '.disk.bytes_total > 400000000 and .disk.bytes_total <= 536870912' true
assert_json '.disk.inodes_used > 0' true
assert_json '.disk.host_bytes > 0' true
assert_json '.io | has("read_bytes") and has("write_ops")' true
api GET /v1/ves/nosuchve/usage
assert_error 404

begin_case "free inside a VE with --ram 256M shows about 256M; /proc/uptime is the VE's"
OUT=$(vectl exec 301 free -m 2>&1)
assert_match "$(awk '/^Mem:/ { print $2 }' <<<"$OUT")" '^(25[0-9]|26[0-9])$' "free -m total ($OUT)"
UP=$(vectl exec 301 cat /proc/uptime | cut -d. -f1)
HOSTUP=$(cut -d. -f1 /proc/uptime)
check "the VE's uptime ($UP s) is its own, not the host's ($HOSTUP s)" test "$UP" -lt 120 -a "$HOSTUP" -gt "$UP"
# busybox's free run by its shell, and its uptime, ask sysinfo(2), which
# ve-statfsd answers with the VE's own figures (ve/sysinfo.h).
OUT=$(vectl exec 301 sh -c 'free -m' 2>&1)
assert_match "$(awk '/^Mem:/ { print $2 }' <<<"$OUT")" '^(25[0-9]|26[0-9])$' "sh -c free -m total ($OUT)"
assert_match "$(awk '/^Mem:/ { print $3 }' <<<"$OUT")" '^[0-9]{1,2}$' "sh -c free -m used, in MiB ($OUT)"
OUT=$(vectl exec 301 uptime 2>&1)
assert_match "$OUT" ' up ([0-9] min|0:0[0-9]),' "uptime counts from the VE's start ($OUT)"
api GET /v1/host
assert_json '.lxcfs' true

# --- memory ----------------------------------------------------------------------

begin_case "a memory hog is OOM-killed inside the VE only, and the event says so"
vectl create 302 --ostemplate "$TEMPLATE" --ram 128M >/dev/null 2>&1 && vectl start 302 >/dev/null 2>&1
check "VE 302 runs" test "$(ve_state 302)" = running
BEFORE=$(events_of ve.limit.ram 301)
vectl exec 301 sh -c 'x=$(head -c 600000000 /dev/zero | tr "\0" a); echo ${#x}' >"$T/hog" 2>&1
assert_eq "$?" 137 "the hog's exit status (killed by SIGKILL) ($(cat "$T/hog"))"
check "an event ve.limit.ram for VE 301" wait_until 5 events_over ve.limit.ram 301 "$BEFORE"
api GET /v1/ves/301/usage
assert_json '.memory.oom_kills >= 1' true
assert_json '.memory.failcnt > 0' true
assert_eq "$(ve_state 301)" running "VE 301 still runs"
assert_eq "$(vectl exec 302 echo alive 2>&1)" alive "the other VE is unaffected"
assert_eq "$(sh -c 'echo host alive')" "host alive" "the host is unaffected"

# --- processes ---------------------------------------------------------------------

begin_case "a fork bomb stops at numproc; the host still forks; the event is reported"
BEFORE=$(events_of ve.limit.numproc 301)
vectl exec 301 sh -c 'i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); done; wait' >"$T/bomb" 2>&1 &
BOMB=$!
wait_until 20 pids_at_least 301 60
sleep 1
N=$(pids_now 301)
check "the VE holds at most 64 processes ($N)" test "${N:-999}" -le 64
check "the VE reached its limit ($N)" test "${N:-0}" -ge 60
assert_eq "$(/bin/true && echo forked)" forked "the host still forks"
check "an event ve.limit.numproc for VE 301" wait_until 5 events_over ve.limit.numproc 301 "$BEFORE"
api GET /v1/ves/301/usage
assert_json '.processes.limit_hits > 0' true
vectl exec 301 sh -c 'kill $(pidof sleep) 2>/dev/null; true' >/dev/null 2>&1
wait "$BOMB" 2>/dev/null
check "the fork bomb's processes are gone" wait_until 10 pids_at_most 301 5

# --- disk ----------------------------------------------------------------------------

begin_case "df inside shows the VE's own size; dd past diskspace fails with ENOSPC"
# Size is diskspace exactly (ve-statfsd: ve/statfs_notify.h), and Used + Available
# add up to it.
DF=$(vectl exec 301 df -k / 2>&1 | awk 'NR == 2 { print $2, $3 + $4 }')
assert_eq "$DF" "524288 524288" "df / in KiB: size, used + available"
DF=$(vectl exec 301 sh -c 'cd /etc && df -k .' 2>&1 | awk 'NR == 2 { print $2 }')
assert_eq "$DF" 524288 "df . in /etc (a relative path)"
HOSTFREE0=$(df -k --output=avail "$STATE_DIR" | tail -1)
OUT=$(vectl exec 301 dd if=/dev/zero of=/fill bs=1M count=700 2>&1)
assert_ne "$?" 0 "dd past diskspace fails"
assert_match "$OUT" 'No space left on device' "dd's error"
HOSTFREE1=$(df -k --output=avail "$STATE_DIR" | tail -1)
check "the host keeps its free space (lost $(((HOSTFREE0 - HOSTFREE1) / 1024)) MiB of a 512M VE)" \
        test $((HOSTFREE0 - HOSTFREE1)) -lt $((600 * 1024))
check "an event ve.limit.diskspace for VE 301" wait_until 5 events_over ve.limit.diskspace 301 0

begin_case "shrinking diskspace below what is used is refused, saying how much is used"
api PATCH /v1/ves/301 '{"diskspace":"100M"}'
assert_error 400
assert_match "$(jq -r .error.message <<<"$BODY")" 'in use' "the message"
api GET /v1/ves/301
assert_json .diskspace 536870912 "diskspace unchanged"

begin_case "online grow of diskspace lets the write succeed (vzctl's BARRIER:LIMIT form)"
OUT=$(vectl set 301 --diskspace 900M:1G 2>&1)
assert_eq "$?" 0 "vectl set --diskspace 900M:1G on the running VE ($OUT)"
OUT=$(vectl exec 301 sh -c 'rm -f /fill; dd if=/dev/zero of=/fill bs=1M count=700 && rm /fill' 2>&1)
assert_eq "$?" 0 "dd of 700M after the grow ($OUT)"
# The image is mounted with discard: the 700M written and removed go back to the
# host (at ext4's next commit), it does not stay that much larger.
img_mib() { echo $(($(stat -c %b "$STATE_DIR/ves/301/root.img") * 512 / 1048576)); }
img_below() { [ "$(img_mib)" -lt "$1" ]; }
check "the image gives the removed file's space back ($(img_mib) MiB on the host)" \
        wait_until 20 img_below 300
DF=$(vectl exec 301 df -k / 2>&1 | awk 'NR == 2 { print $2, $3 + $4 }')
assert_eq "$DF" "1048576 1048576" "df now shows 1G: size, used + available"
vectl exec 301 rm -f /fill >/dev/null 2>&1

begin_case "df shows diskspace to every process of the VE, while ved is down too, and to users"
# A loop started by the VE's init (not by vectl exec) writes what df says.
cat >"$T/dfloop" <<'EOF'
while true; do echo "$(date +%s) $(df -k / | tail -n 1)" >/df.tmp && mv /df.tmp /df.out; sleep 0.2; done
EOF
vectl exec 301 sh -c 'cat >/dfloop; echo "::respawn:/bin/sh /dfloop" >>/etc/inittab' <"$T/dfloop"
OUT=$(vectl restart 301 2>&1)
assert_eq "$?" 0 "vectl restart 301 ($OUT)"
# Read from the host's view of the VE's files: it needs no daemon.
df_out() { cat "$STATE_DIR/ves/301/root/df.out" 2>/dev/null; }
df_fresh() { set -- $(df_out); [ -n "$1" ] && [ $(($(date +%s) - $1)) -le 2 ] && [ "$3" = 1048576 ]; }
check "init's loop sees 1G ($(df_out))" wait_until 10 df_fresh
STATFSD=$(cat "$STATE_DIR/statfsd.pid" 2>/dev/null)
check "ve-statfsd runs ($STATFSD)" test "$(cat "/proc/$STATFSD/comm" 2>/dev/null)" = ve-statfsd
ved_kill9
sleep 2.5
check "ve-statfsd outlives the daemon" test "$(cat "/proc/$STATFSD/comm" 2>/dev/null)" = ve-statfsd
check "init's loop goes on seeing 1G while the daemon is down ($(df_out))" df_fresh
ved_start || fail "the daemon starts again"
assert_eq "$(cat "$STATE_DIR/statfsd.pid" 2>/dev/null)" "$STATFSD" "the new daemon found the same ve-statfsd"
OUT=$(vectl exec 301 sh -c 'mkdir -p /home/p && chmod 700 /home/p && touch /home/p/f &&
        su -s /bin/sh nobody -c "df -k /tmp | tail -n 1; stat -f /home/p/f"' 2>&1)
assert_match "$OUT" '1048576' "df as nobody"
assert_match "$OUT" 'Permission denied' "statfs of a file nobody cannot reach is refused as before"
kill -KILL "$STATFSD"
check "ved starts ve-statfsd again" wait_until 10 pidfile_renewed "$STATE_DIR/statfsd.pid" "$STATFSD"
assert_match "$(cat "$VED_LOG")" 've-statfsd is gone' "the daemon's log"
# The daemon kept a copy of init's listener (taken back from ve-statfsd after its
# own kill -9) and gave it to the new server: init's processes never noticed.
check "init's loop still sees 1G after ve-statfsd was killed ($(df_out))" wait_until 5 df_fresh
assert_match "$(cat "$VED_LOG")" 'gave it the statfs filters of [0-9]+ running VE' "the daemon's log"
DF=$(vectl exec 301 df -k / 2>&1 | awk 'NR == 2 { print $2 }')
assert_eq "$DF" 1048576 "a new vectl exec gets the new ve-statfsd's answer"
# The respawn line out again, and an init that runs under the new ve-statfsd.
vectl exec 301 sh -c 'sed -i "/dfloop/d" /etc/inittab; rm -f /dfloop /df.out' >/dev/null 2>&1
OUT=$(vectl restart 301 2>&1)
assert_eq "$?" 0 "vectl restart 301 ($OUT)"

begin_case "creating files past diskinodes fails"
OUT=$(vectl create 303 --ostemplate "$TEMPLATE" --diskinodes 11000:12000 2>&1 &&
        vectl start 303 2>&1)
check "VE 303 runs ($OUT)" test "$(ve_state 303)" = running
# The shell's own redirection makes each file: no fork per file.
OUT=$(vectl exec 303 sh -c 'mkdir /many; i=0; while true 2>/dev/null >/many/f$i; do i=$((i+1)); [ $i -gt 20000 ] && break; done; echo $i' 2>&1)
check "file creation stopped before 13200 files ($OUT files made)" test "${OUT:-99999}" -lt 13200 -a "${OUT:-0}" -gt 10000
api GET /v1/ves/303/usage
assert_json '.disk.inodes_total >= 12000 and .disk.inodes_total <= 13200' true
assert_json '.disk.inodes_used == .disk.inodes_total' true
DFI=$(vectl exec 303 df -i / 2>&1 | awk 'NR == 2 { print $2 }')
check "df -i shows about 12000 inodes ($DFI)" test "${DFI:-0}" -ge 12000 -a "${DFI:-0}" -le 13200
check "an event ve.limit.diskinodes for VE 303" wait_until 5 events_over ve.limit.diskinodes 303 0

begin_case "a disk change to a stopped VE is checked at once and made at its next start"
OUT=$(vectl stop 303 2>&1)
assert_eq "$?" 0 "vectl stop 303 ($OUT)"
api PATCH /v1/ves/303 '{"diskinodes":2000}'
assert_error 400
assert_match "$(jq -r .error.message <<<"$BODY")" 'in use' "below the inodes in use: the message"
api PATCH /v1/ves/303 '{"diskinodes":30000}'
assert_status 200
assert_json .diskinodes 30000
api GET /v1/ves/303/usage
assert_json '.disk.inodes_total <= 13200' true "the image is untouched until the start"
OUT=$(vectl start 303 2>&1)
assert_eq "$?" 0 "vectl start 303 ($OUT)"
DFI=$(vectl exec 303 df -i / 2>&1 | awk 'NR == 2 { print $2 }')
check "df -i shows about 30000 inodes after the start ($DFI)" test "${DFI:-0}" -ge 30000 -a "${DFI:-0}" -le 33000
N=$(vectl exec 303 sh -c 'ls /many | wc -l' 2>&1)
check "the VE's files survived the rebuild ($N in /many)" test "${N:-0}" -gt 10000
vectl destroy 303 --force >/dev/null 2>&1

# --- CPU -----------------------------------------------------------------------------

begin_case "--cpulimit 50% holds a busy loop to 50% +-10% over 5 s"
C0=$(cpu_ns 301)
vectl exec 301 sh -c 'timeout 5 sh -c "while :; do :; done"' >/dev/null 2>&1
C1=$(cpu_ns 301)
PCT=$(((C1 - C0) / 50000000))
check "CPU use $PCT% is 50% +-10%" within "$PCT" 50 10

begin_case "two busy VEs on one CPU with cpuunits 1000 and 3000 split it 1:3 +-15%"
# VEs on the same CPU: cpuset picks CPU (ctid mod ncpu), so even CTIDs share one.
vectl create 310 --ostemplate "$TEMPLATE" --cpus 1 --cpuunits 1000 >/dev/null 2>&1
vectl create 312 --ostemplate "$TEMPLATE" --cpus 1 --cpuunits 3000 >/dev/null 2>&1
vectl start 310 >/dev/null 2>&1
vectl start 312 >/dev/null 2>&1
if [ "$CG" = v1 ]; then
        assert_eq "$(cgfile cpuset 310 cpuset.cpus)" "$(cgfile cpuset 312 cpuset.cpus)" "both on one CPU"
fi
A0=$(cpu_ns 310) B0=$(cpu_ns 312)
vectl exec 310 sh -c 'timeout 6 sh -c "while :; do :; done"' >/dev/null 2>&1 &
P1=$!
vectl exec 312 sh -c 'timeout 6 sh -c "while :; do :; done"' >/dev/null 2>&1 &
P2=$!
wait "$P1" "$P2"
A1=$(cpu_ns 310) B1=$(cpu_ns 312)
RATIO=$(awk -v a=$((A1 - A0)) -v b=$((B1 - B0)) 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
check "CPU time ratio 312:310 is $RATIO, 3 +-15%" within "$RATIO" 3 15
vectl destroy 310 --force >/dev/null 2>&1
vectl destroy 312 --force >/dev/null 2>&1

# --- I/O -----------------------------------------------------------------------------

begin_case "--iolimit 10M holds a direct dd write to 10 MB/s +-15%"
T0=$(date +%s%N)
vectl exec 301 dd if=/dev/zero of=/io bs=1M count=30 oflag=direct >/dev/null 2>&1
T1=$(date +%s%N)
RATE=$(awk -v ns=$((T1 - T0)) 'BEGIN { printf "%.2f", 30 / (ns / 1e9) }')
check "write rate $RATE MiB/s is 10 +-15%" within "$RATE" 10 15
T0=$(date +%s%N)
vectl exec 301 dd if=/io of=/dev/null bs=1M iflag=direct >/dev/null 2>&1
T1=$(date +%s%N)
RATE=$(awk -v ns=$((T1 - T0)) 'BEGIN { printf "%.2f", 30 / (ns / 1e9) }')
check "read rate $RATE MiB/s is 10 +-15%" within "$RATE" 10 15

begin_case "--iopslimit 200 holds 4k direct writes to 200/s +-15%"
T0=$(date +%s%N)
vectl exec 301 dd if=/dev/zero of=/iops bs=4k count=600 oflag=direct >/dev/null 2>&1
T1=$(date +%s%N)
RATE=$(awk -v ns=$((T1 - T0)) 'BEGIN { printf "%.1f", 600 / (ns / 1e9) }')
check "write rate $RATE IOPS is 200 +-15%" within "$RATE" 200 15
vectl exec 301 rm -f /io /iops >/dev/null 2>&1
api GET /v1/ves/301/usage
assert_json '.io.write_bytes >= 31457280' true

# --- live changes that survive -------------------------------------------------------

begin_case "vectl set of each limit on a running VE takes effect without restart"
PID1=$(ve_init_pid 301)
OUT=$(vectl set 301 --ram 384M --swap 0 --cpulimit 150 --cpuunits 500 --numproc 100 \
        --iolimit 20M --iopslimit 400 --cpus 2 2>&1)
assert_eq "$?" 0 "vectl set ($OUT)"
assert_eq "$(ve_init_pid 301)" "$PID1" "the same init: no restart"
if [ "$CG" = v1 ]; then
        EXPECT="402653184 100 150000 512"
        assert_eq "$(cgfile memory 301 memory.memsw.limit_in_bytes)" 402653184 "memsw = ram (swap 0)"
        assert_match "$(cgfile blkio 301 blkio.throttle.read_bps_device)" ' 20971520$' "read bps"
else
        EXPECT="402653184 100 150000 50"
fi
assert_eq "$(limits_of 301)" "$EXPECT" "limits after set"
OUT=$(vectl exec 301 free -m 2>&1)
assert_match "$(awk '/^Mem:/ { print $2 }' <<<"$OUT")" '^(37[0-9]|38[0-9])$' "free -m total after set"

begin_case "the limits survive a daemon restart and a VE restart"
ved_stop
ved_start || fail "the daemon starts again"
assert_eq "$(limits_of 301)" "$EXPECT" "limits after the daemon restart"
api GET /v1/ves/301
assert_json '[.ram, .numproc, .cpulimit, .cpuunits, .cpus, .iolimit, .iopslimit] | map(tostring) | join(" ")' \
        "402653184 100 150 500 2 20971520 400"
OUT=$(vectl restart 301 2>&1)
assert_eq "$?" 0 "vectl restart ($OUT)"
assert_ne "$(ve_init_pid 301)" "$PID1" "a new init"
assert_eq "$(limits_of 301)" "$EXPECT" "limits after the VE restart"
api GET /v1/ves/301/usage
assert_json '.disk.bytes_total > 900000000' true

begin_case "vectl set lifts a limit as vzctl does: unlimited, or 0 where 0 means none"
OUT=$(vectl set 301 --ram unlimited --numproc unlimited --cpulimit 0 --iolimit 0 --iopslimit 0 \
        --cpus 0 2>&1)
assert_eq "$?" 0 "vectl set ($OUT)"
api GET /v1/ves/301
assert_json '[.ram, .numproc, .cpulimit, .cpus, .iolimit, .iopslimit] | map(tostring) | join(" ")' \
        "null null null null null null"
if [ "$CG" = v1 ]; then
        assert_eq "$(cgfile pids 301 pids.max)" max "pids.max"
        assert_eq "$(cgfile cpu 301 cpu.cfs_quota_us)" -1 "cpu.cfs_quota_us"
fi
OUT=$(vectl set 301 --ram 0 2>&1)
assert_eq "$?" 6 "--ram 0 is no memory at all, refused ($OUT)"
OUT=$(vectl set 301 --ram 384M --numproc 100 --cpulimit 150 --iolimit 20M --iopslimit 400 --cpus 2 2>&1)
assert_eq "$?" 0 "vectl set them again ($OUT)"
assert_eq "$(limits_of 301)" "$EXPECT" "limits set again"

begin_case "bad limits are refused with a clear error, and nothing changes"
api PATCH /v1/ves/301 '{"ram":"1K"}'
assert_error 400
assert_match "$(jq -r .error.message <<<"$BODY")" 'ram' "the message names the parameter"
api PATCH /v1/ves/301 '{"cpulimit":"lots"}'
assert_error 400
api PATCH /v1/ves/301 '{"numproc":-1}'
assert_error 400
OUT=$(vectl set 301 --cpuunits 0 2>&1)
assert_ne "$?" 0 "vectl set --cpuunits 0 fails"
OUT=$(vectl set 301 --diskspace 2G:1G 2>&1)
assert_eq "$?" 2 "vectl set --diskspace 2G:1G is a usage error"
assert_match "$OUT" "barrier 2G is above the limit 1G" "the message"
assert_eq "$(limits_of 301)" "$EXPECT" "limits unchanged"

# --- usage for the provider --------------------------------------------------------------

begin_case "GET /v1/usage and vectl list usage fields"
api GET /v1/usage
assert_status 200
assert_json '[.usage[] | select(.ctid == 301 and .state == "running")] | length' 1
assert_json '[.usage[] | select(.ctid == 302)][0].memory.limit' 134217728
OUT=$(vectl list -H -o ctid,numproc,numproc.l,physpages.l,diskspace.l 2>&1)
assert_match "$OUT" '301 +[0-9]+ +100 +384M +1(\.0)?G' "vectl list of 301 ($OUT)"
OUT=$(vectl list -j -o ctid,physpages,oomkills 2>&1)
assert_eq "$(jq '[.[] | select(.ctid == 301)][0].oomkills' <<<"$OUT")" 0 "oomkills after the VE restart"

begin_case "/metrics is Prometheus text that promtool accepts"
curl -s --max-time 5 --unix-socket "$SOCK" -D "$T/mh" -o "$T/metrics" http://ved/metrics
assert_match "$(tr -d '\r' <"$T/mh")" 'Content-Type: text/plain; version=0.0.4' "content type"
assert_match "$(cat "$T/metrics")" 'ved_memory_limit_bytes\{ctid="301",name=""\} 402653184' "memory limit"
assert_match "$(cat "$T/metrics")" 'ved_up\{ctid="301",name=""\} 1' "ved_up"
PROMTOOL=$(promtool_path)
if [ -x "$PROMTOOL" ]; then
        OUT=$("$PROMTOOL" check metrics <"$T/metrics" 2>&1)
        assert_eq "$?" 0 "promtool check metrics ($OUT)"
else
        fail "promtool is not available ($PROMTOOL)"
fi

begin_case "a killed lxcfs is started again; running VEs and VEs started after it see their own figures"
api GET /v1/ves/301
RAM301=$(jqb .ram)
assert_eq "$(ve_state 301)" running "VE 301 runs"
OLD=$(cat "$STATE_DIR/lxcfs.pid" 2>/dev/null)
kill -KILL "$OLD" 2>/dev/null
check "lxcfs runs again under a new pid" wait_until 10 pidfile_renewed "$STATE_DIR/lxcfs.pid" "$OLD"
if ! pidfile_renewed "$STATE_DIR/lxcfs.pid" "$OLD"; then
        echo "   (lxcfs's log, and the daemon's lines about it:)"
        tail -n 20 "$STATE_DIR/lxcfs.log" 2>/dev/null | sed 's/^/   | /'
        grep lxcfs "$VED_LOG" | tail -n 5 | sed 's/^/   | /'
fi
meminfo_301() { vectl exec 301 awk '/^MemTotal/ { print $2 }' /proc/meminfo 2>&1; }
meminfo_301_ok() { [ "$(meminfo_301)" = $((RAM301 / 1024)) ]; }
check "VE 301, running all along, reads its own MemTotal again ($(meminfo_301))" wait_until 5 meminfo_301_ok
OUT=$(vectl exec 301 uptime 2>&1)
assert_eq "$?" 0 "uptime in VE 301 ($OUT)"
assert_match "$(cat "$VED_LOG")" 'running VE\(s\) got the new lxcfs' "the daemon's log"
OUT=$(vectl create 321 --ostemplate "$TEMPLATE" --ram 192M 2>&1 && vectl start 321 2>&1)
assert_eq "$(ve_state 321)" running "VE 321 runs ($OUT)"
assert_eq "$(vectl exec 321 awk '/^MemTotal/ { print $2 }' /proc/meminfo 2>&1)" 196608 \
        "MemTotal in VE 321 (kB)"
assert_match "$(cat "$VED_LOG")" 'lxcfs at .* is gone; starting it again' "the daemon's log"
vectl destroy 321 --force >/dev/null 2>&1

begin_case "an lxcfs that does not come back is tried again until it does"
# A stand-in that exits at once, bind-mounted over lxcfs's binary: the restart
# fails; once it is gone, a later try brings lxcfs back to the running VE.
LXCFS_BIN=$(command -v lxcfs)
printf '#!/bin/sh\nexit 1\n' >"$T/lxcfs-broken"
chmod 0755 "$T/lxcfs-broken"
mount --bind "$T/lxcfs-broken" "$LXCFS_BIN" && LXCFS_FAKED=$LXCFS_BIN
OLD=$(cat "$STATE_DIR/lxcfs.pid" 2>/dev/null)
# Counted, not just found: the restart case above may have logged one already.
RETRIES=$(grep -c 'lxcfs did not come back: trying again' "$VED_LOG")
retried() { [ "$(grep -c 'lxcfs did not come back: trying again' "$VED_LOG")" -gt "$RETRIES" ]; }
kill -KILL "$OLD" 2>/dev/null
check "ved says it will try again" wait_until 20 retried
umount "$LXCFS_BIN" && LXCFS_FAKED=
check "lxcfs runs again under a new pid" wait_until 20 pidfile_renewed "$STATE_DIR/lxcfs.pid" "$OLD"
check "VE 301 reads its own MemTotal again ($(meminfo_301))" wait_until 10 meminfo_301_ok

begin_case "without lxcfs a VE still starts, and ved says so"
ves_teardown_all
ved_stop
lxcfs_cleanup
# A file where lxcfs's mount point goes: lxcfs cannot start.
rmdir "$STATE_DIR/lxcfs" 2>/dev/null
check "lxcfs's mount point is gone" test ! -e "$STATE_DIR/lxcfs"
touch "$STATE_DIR/lxcfs"
ved_start || fail "the daemon starts without lxcfs"
api GET /v1/host
assert_json '.lxcfs' false
OUT=$(vectl create 320 --ostemplate "$TEMPLATE" --ram 256M 2>&1 && vectl start 320 2>&1)
assert_eq "$(ve_state 320)" running "VE 320 runs ($OUT)"
TOTAL=$(vectl exec 320 awk '/^MemTotal/ { print $2 }' /proc/meminfo 2>&1)
assert_eq "$TOTAL" "$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)" "the VE sees the host's MemTotal"
check "an event ve.degraded for VE 320" events_over ve.degraded 320 0
assert_match "$(cat "$VED_LOG")" 'lxcfs: .* is not a directory; VEs start without it' "the daemon's log says why"
vectl destroy 320 --force >/dev/null 2>&1
rm -f "$STATE_DIR/lxcfs"

finish
