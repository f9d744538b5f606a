#!/usr/bin/env bash
# The escape suite: each case tries a known way out of a VE for real, through a
# running daemon and the API, and fails if the attack works. Needs root (it runs
# VEs). The VEs are unprivileged only when the daemon passes their id range to
# the runtime (struct ve_idmap); the first case checks that it does.
#
#   bash tests/security/test_escape.sh      (VED_BUILD=dir to pick the build)
#
# Cases (see the isolation issue): 1 host binary through /proc/<pid>/exe,
# 2 fds and cwd of init and exec'd processes, 3 exec cwd through /proc/self/fd,
# 4 /proc, /sys or /dev a symlink at start, 5 /dev/null, /dev/console and
# /etc/hostname symlinks to host files, 6 writes to kernel knobs, 7 reads of
# masked files, 8 cgroup v1 release_agent, 9 parent cgroup limits, 10 mknod and
# open of the host's disk and /dev/mem, 11 guest configuration through planted
# symlinks, 12 the name=systemd subtree, 13 a statfs flood against ve-statfsd,
# 14 a /proc flood against lxcfs, 15 an entering command stopped by the VE,
# 16 signals while ved execs (last: it leaves the VE's processes killed).

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

if [ "$(id -u)" != 0 ]; then
        echo "the escape suite needs root"
        exit 1
fi

CT=201
VE_ROOT=$STATE_DIR/ves/$CT/root
# The private area's own mount (guest ids on disk); VE_ROOT is the idmapped view.
VE_PRIVATE=$STATE_DIR/ves/$CT/private
HOSTDIR=$T/host # host files a VE must not reach
mkdir -p "$HOSTDIR"

# The template from the build's cache when there is one, else from its recipe.
import_template()
{
        local cached=$BUILD/cache/$TEMPLATE.tar.gz sum

        [ -f "$cached" ] || { ensure_template; return; }
        api GET "/v1/templates/$TEMPLATE"
        [ "$STATUS" = 200 ] && return 0
        sum=$(sha256sum "$cached" | cut -d' ' -f1)
        api --ct application/octet-stream POST "/v1/templates?name=$TEMPLATE&sha256=$sum" \
                "@$cached"
        [ "$STATUS" = 202 ] || return 1
        wait_op "$(op_id_from_location)" 300
        [ "$OP_STATUS" = succeeded ]
}

# ve_state ACTION [CTID]: start/stop/restart and wait; OP_STATUS tells the outcome.
ve_state()
{
        api POST "/v1/ves/${2:-$CT}/state" "{\"action\":\"$1\",\"force\":true}"
        if [ "$STATUS" != 202 ]; then
                OP_STATUS="refused $STATUS"
                return 1
        fi
        wait_op "$(op_id_from_location)" 60
        [ "$OP_STATUS" = succeeded ]
}

# vsh SCRIPT: sh -c SCRIPT in the VE through the API's plain mode; sets X_CODE,
# X_OUT and X_ERR (X_CODE is "api STATUS" when the API refused).
vsh()
{
        local body

        body=$(jq -nc --arg s "$1" '{command: ["sh", "-c", $s], timeout: 60}')
        api POST "/v1/ves/$CT/exec" "$body"
        if [ "$STATUS" != 200 ]; then
                X_CODE="api $STATUS"
                X_OUT=
                X_ERR=$BODY
                return
        fi
        X_CODE=$(jqb .exit_code)
        X_OUT=$(jqb .stdout)
        X_ERR=$(jqb .stderr)
}

init_pid()
{
        api GET "/v1/ves/$CT/state"
        jqb '.pid // empty'
}

# The host's mounts this test could have caused (other tests may mount elsewhere).
mounts_snapshot()
{
        awk -v t="$T" 'index($5, t) == 1 || $5 ~ /^\/(etc|proc|sys|dev)(\/|$)/ {print $5, $6}' \
                /proc/self/mountinfo | sort
}

# Make the VE's own root writable at /mnt/r (a non-recursive bind: the kernel
# file systems on /proc, /sys and /dev are not in it), as its root could.
BIND_ROOT='mkdir -p /mnt/r && { mountpoint -q /mnt/r || mount --bind / /mnt/r; }'

export VED_TEST_EXEC_START_TIMEOUT_MS=5000 # case 15
ved_start || { fail "the daemon starts"; finish; }
import_template || { fail "the template $TEMPLATE is there"; finish; }
api POST /v1/ves "{\"ctid\":$CT,\"ostemplate\":\"$TEMPLATE\"}"
wait_op "$(op_id_from_location)" 120
[ "$OP_STATUS" = succeeded ] || { fail "create VE $CT"; finish; }
ve_state start || { fail "start VE $CT: $BODY"; finish; }

# The rest means little if the VE's root is the host's root.
begin_case "0. the VE runs in its own user namespace, root inside, its range outside"
api GET "/v1/ves/$CT"
BASE=$(jqb '.idmap.uid_base // empty')
assert_ne "$BASE" "" "the VE's id range in the API"
PID=$(init_pid)
assert_eq "$(stat -c %u "/proc/$PID")" "$BASE" "host uid of the VE's init"
vsh 'id -u; cat /proc/self/uid_map'
assert_eq "$X_CODE" 0 "exec"
assert_match "$X_OUT" "^0"$'\n'" +0 +$BASE +65536$" "uid inside and the map"
vsh 'touch /root/made-inside'
assert_eq "$(stat -c '%u:%g' "$VE_ROOT/root/made-inside")" "$BASE:$BASE" \
        "host owner of a file the VE made (seen at ves/<ctid>/root)"
assert_eq "$(stat -c '%u' "$VE_PRIVATE/root/made-inside")" 0 "its owner on disk: guest root"

begin_case "1. the host binary cannot be reached through /proc/<pid>/exe of an entering process"
VED_SUM=$(sha256sum "$VED_BIN" | cut -d' ' -f1)
# A racer inside opens /proc/<pid>/exe of every process it sees, for writing and
# for reading, while the host runs execs into the VE; it logs what it opened.
vsh 'cat > /tmp/racer.sh <<"E"
while [ ! -e /tmp/racer.stop ]; do
        for p in /proc/[0-9]*; do
                [ "$p" = /proc/$$ ] && continue
                (exec 3>>"$p/exe") 2>/dev/null && echo "write $p" >> /tmp/racer.log
                s=$(md5sum < "$p/exe" 2>/dev/null) && echo "read $s" >> /tmp/racer.log
        done
done
touch /tmp/racer.done
E
rm -f /tmp/racer.log /tmp/racer.stop /tmp/racer.done
setsid sh /tmp/racer.sh </dev/null >/dev/null 2>&1 &'
assert_eq "$X_CODE" 0 "start the racer"
for i in $(seq 1 40); do
        vsh 'true'
done
vsh 'touch /tmp/racer.stop; for i in $(seq 1 50); do [ -e /tmp/racer.done ] && break; sleep 0.1; done; cat /tmp/racer.log 2>/dev/null; true'
VED_MD5=$(md5sum <"$VED_BIN")
assert_eq "$(grep -c '^write' <<<"$X_OUT")" 0 "opens of a /proc/<pid>/exe for writing"
assert_eq "$(grep -cF "read $VED_MD5" <<<"$X_OUT")" 0 "reads of the daemon's binary"
assert_eq "$(sha256sum "$VED_BIN" | cut -d' ' -f1)" "$VED_SUM" "the daemon's binary"
# And directly: an exec'd process cannot write its own or init's binary to the host.
vsh 'echo x >> /proc/self/exe; echo x >> /proc/1/exe'
assert_ne "$X_CODE" 0 "write to /proc/self/exe and /proc/1/exe"

begin_case "2. init and exec'd processes hold only their stdio, cwd inside"
# init's fds, listed by a shell; the shell's own are seen by an exec'd ls, which
# holds 0-2 and the directory it reads (3): a shell would add the fds of its
# redirections and command substitutions.
vsh 'ls /proc/1/fd > /tmp/f1; echo $(cat /tmp/f1); echo
        readlink /proc/1/cwd; readlink /proc/$$/cwd; readlink /proc/1/root
        for f in /proc/1/fd/*; do readlink $f; done; for f in 0 1 2; do readlink /proc/$$/fd/$f; done'
assert_eq "$X_CODE" 0 "exec"
assert_eq "$(sed -n 1p <<<"$X_OUT")" "0 1 2" "init's fds"
api POST "/v1/ves/$CT/exec" '{"command":["ls","/proc/self/fd"]}'
assert_eq "$(jqb .stdout | xargs)" "0 1 2 3" "an exec'd process's fds"
assert_eq "$(sed -n 3,5p <<<"$X_OUT" | tr '\n' ' ')" "/ / / " "cwd and root"
assert_eq "$(sed -n '6,$p' <<<"$X_OUT" | grep -cvE '^(/dev/(console|pts/[0-9]+)|pipe:\[[0-9]+\])$')" \
        0 "fds that are not the console or pipes"

begin_case "3. exec with cwd set to a /proc/self/fd path is refused"
api POST "/v1/ves/$CT/exec" '{"command":["pwd"],"cwd":"/proc/self/fd/3"}'
assert_match "$STATUS" '^4[0-9][0-9]$' "status of an exec with a cwd"
vsh 'pwd; readlink /proc/$$/cwd'
assert_eq "$X_OUT" $'/\n/' "the cwd an exec gets"

begin_case "4. /proc, /sys or /dev a symlink in the VE's root: start fails, host mounts unchanged"
mkdir -p "$HOSTDIR/target"
for d in proc sys dev; do
        # The VE's root made these mounts in its own namespaces: it may take them
        # away and put a symlink to a host path in their place.
        vsh "umount -l /$d && rm -rf /$d && ln -s $HOSTDIR/target /$d"
        assert_eq "$X_CODE" 0 "replace /$d by a symlink: $X_ERR"
        ve_state stop || fail "stop: $OP_STATUS"
        BEFORE=$(mounts_snapshot)
        ve_state start
        assert_eq "$OP_STATUS" failed "start with /$d a symlink"
        assert_match "$(jqb .error.message)" "/$d is a symlink" "why the start failed"
        assert_eq "$(mounts_snapshot)" "$BEFORE" "host mounts under $T after the failed start"
        assert_eq "$(ls -A "$HOSTDIR/target")" "" "the symlink's host target"
        # Repair the private area from the host (the VE is stopped: nothing of it
        # is mounted), on a mount of our own that goes again at once.
        mkdir -p "$T/repair"
        mount -o loop,nodev "$STATE_DIR/ves/$CT/root.img" "$T/repair" || fail "mount the image"
        rm -f "$T/repair/$d" && mkdir -m 0755 "$T/repair/$d" || fail "repair /$d"
        umount "$T/repair" || fail "unmount the repaired image"
        ve_state start || fail "start after repairing /$d: $OP_STATUS $BODY"
done

begin_case "5. /dev/null, /dev/console and /etc/hostname symlinks to host files: no write reaches the host"
for f in null console hostname; do echo orig >"$HOSTDIR/$f"; done
vsh "$BIND_ROOT && mkdir -p /mnt/r/dev && rm -f /mnt/r/dev/null /mnt/r/dev/console /etc/hostname &&
        ln -s $HOSTDIR/null /mnt/r/dev/null && ln -s $HOSTDIR/console /mnt/r/dev/console &&
        ln -s $HOSTDIR/hostname /etc/hostname"
assert_eq "$X_CODE" 0 "plant the symlinks"
api PATCH "/v1/ves/$CT" '{"hostname":"escape.example"}'
ve_state restart || fail "restart: $OP_STATUS $BODY"
vsh 'echo pwned > /dev/null; echo pwned > /dev/console; echo pwned > /etc/hostname; true'
for f in null console hostname; do
        assert_eq "$(cat "$HOSTDIR/$f")" orig "host file behind /dev/$f"
done

begin_case "6. writes to core_pattern, sysrq-trigger, uevent_helper, drop_caches: denied, host unchanged"
CORE=$(cat /proc/sys/kernel/core_pattern)
HELPER=$(cat /sys/kernel/uevent_helper 2>/dev/null)
for f in /proc/sys/kernel/core_pattern /proc/sysrq-trigger /sys/kernel/uevent_helper \
        /proc/sys/vm/drop_caches; do
        vsh "echo '|/tmp/x' > $f"
        assert_ne "$X_CODE" 0 "write to $f"
done
# Taking the read-only mounts away does not help: the files are the host's root's.
vsh 'umount /proc/sys 2>/dev/null; umount /sys 2>/dev/null; echo "|/tmp/x" > /proc/sys/kernel/core_pattern'
assert_ne "$X_CODE" 0 "write to core_pattern after umount"
vsh 'mount -o remount,rw /sys 2>/dev/null; echo /tmp/x > /sys/kernel/uevent_helper'
assert_ne "$X_CODE" 0 "write to uevent_helper after remount"
assert_eq "$(cat /proc/sys/kernel/core_pattern)" "$CORE" "host core_pattern"
assert_eq "$(cat /sys/kernel/uevent_helper 2>/dev/null)" "$HELPER" "host uevent_helper"

begin_case "7. /proc/kcore, /proc/keys, /proc/timer_list, /sys/firmware: empty or denied"
for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
        vsh "cat $f 2>/dev/null | wc -c"
        assert_eq "$X_OUT" 0 "bytes read from $f"
done
vsh 'find /sys/firmware | wc -l; cat /sys/firmware/* 2>/dev/null | wc -c'
assert_eq "$X_OUT" $'1\n0' "/sys/firmware"

begin_case "8. a cgroup v1 hierarchy mounted inside: release_agent and notify_on_release cannot be written"
AGENTS=$(cat /sys/fs/cgroup/*/release_agent 2>/dev/null | md5sum)
for opts in memory rdma pids none,name=escape; do
        vsh "mkdir -p /tmp/cg && umount /tmp/cg 2>/dev/null; mount -t cgroup -o $opts cgroup /tmp/cg || exit 0
                echo /tmp/x > /tmp/cg/release_agent && echo AGENT
                echo 1 > /tmp/cg/notify_on_release && echo NOTIFY
                mkdir /tmp/cg/x 2>/dev/null && echo 1 > /tmp/cg/x/notify_on_release && echo SUBNOTIFY
                true"
        assert_eq "$(grep -cE 'AGENT|NOTIFY' <<<"$X_OUT")" 0 "cgroup -o $opts: $X_OUT"
done
vsh 'umount /tmp/cg 2>/dev/null; true'
assert_eq "$(cat /sys/fs/cgroup/*/release_agent 2>/dev/null | md5sum)" "$AGENTS" "host release_agents"

begin_case "9. only the VE's own cgroup subtree is visible, and no limit above it can be written"
if [ -d /sys/fs/cgroup/memory ]; then
        LIMIT=$(cat "/sys/fs/cgroup/memory/$INSTANCE/memory.limit_in_bytes")
        vsh "cat /proc/self/cgroup | grep -v ':/\$'; mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg &&
                ls /tmp/cg | grep -E '^($INSTANCE|$CT|system.slice|user.slice)\$';
                echo 1 > /tmp/cg/memory.limit_in_bytes && echo LIMIT-WRITTEN;
                echo $$ > /tmp/cg/cgroup.procs && echo PROCS-WRITTEN;
                umount /tmp/cg; true"
        assert_eq "$X_OUT" "" "cgroups outside the VE seen, or limits written"
        assert_eq "$(cat "/sys/fs/cgroup/memory/$INSTANCE/memory.limit_in_bytes")" "$LIMIT" \
                "the instance's memory limit"
else
        vsh "cat /proc/self/cgroup"
        assert_eq "$X_OUT" "0::/" "the VE's cgroup namespace root"
fi

begin_case "10. mknod of the host's disk and /dev/mem, then open: denied"
DISK=$(findmnt -n -o SOURCE /)
DEV=$(stat -c '%t %T' "$(readlink -f "$DISK")" 2>/dev/null)
MAJ=$((0x${DEV% *})) MIN=$((0x${DEV#* }))
vsh "mknod /tmp/disk b $MAJ $MIN && echo MKNOD-DISK; mknod /tmp/mem c 1 1 && echo MKNOD-MEM; true"
assert_eq "$X_OUT" "" "mknod inside"
# Nodes that exist anyway (a template could ship them): made from the host.
mknod "$VE_PRIVATE/tmp/hostdisk" b "$MAJ" "$MIN" && mknod "$VE_PRIVATE/tmp/hostmem" c 1 1 ||
        fail "host mknod"
vsh 'mount -o remount,dev / 2>/dev/null; head -c 512 /tmp/hostdisk >/dev/null && echo DISK-READ;
        head -c 1 /tmp/hostmem >/dev/null && echo MEM-READ; true'
assert_eq "$X_OUT" "" "opens of the host's disk and /dev/mem"
rm -f "$VE_PRIVATE/tmp/hostdisk" "$VE_PRIVATE/tmp/hostmem"

begin_case "11. guest configuration never follows the guest's symlinks (hosts, resolv.conf, shadow, .ssh)"
host_sums()
{
        md5sum /etc/passwd /etc/shadow /etc/hosts /etc/resolv.conf "$HOSTDIR"/* 2>/dev/null
        ls -la /authorized_keys /etc/authorized_keys "$HOSTDIR" 2>&1 | md5sum
        [ -e /root/.ssh/authorized_keys ] && md5sum /root/.ssh/authorized_keys
        true
}
for f in hosts resolv shadow network; do echo orig >"$HOSTDIR/$f"; done
mkdir -p "$HOSTDIR/sshdir"
SUMS=$(host_sums)
# Each file the host writes, a link out of the VE: absolute, relative with "..",
# and directories (/root/.ssh to / and to a host directory, /etc/network too).
vsh "rm -f /etc/hosts /etc/resolv.conf /etc/shadow && rm -rf /root/.ssh /etc/network &&
        ln -s $HOSTDIR/hosts /etc/hosts && ln -s ../../../../../../etc/passwd /etc/resolv.conf &&
        ln -s /etc/../../../../etc/shadow /etc/shadow && ln -s $HOSTDIR/sshdir /root/.ssh &&
        ln -s $HOSTDIR /etc/network"
assert_eq "$X_CODE" 0 "plant the symlinks"
KEY='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEscapeTestKeyOnlyForTheEscapeSuite0000000 escape'
api PATCH "/v1/ves/$CT" '{"hostname":"esc2.example","nameserver":["192.0.2.7"],"searchdomain":["x.example"]}'
assert_status 200
api PATCH "/v1/ves/$CT" "{\"ssh_key\":\"$KEY\"}"
assert_error 409
assert_match "$(jq -r .error.message <<<"$BODY")" '/root/.ssh' "the refusal names the guest's path"
api PATCH "/v1/ves/$CT" '{"userpasswd":"root:escape-pw"}'
echo "   live password answered $STATUS"
assert_eq "$(host_sums)" "$SUMS" "host files after live writes"
# The same at start, and with /root/.ssh pointing at the VE's own root.
vsh "rm -f /root/.ssh && ln -s / /root/.ssh"
ve_state restart || fail "restart: $OP_STATUS $BODY"
ve_state stop
api PATCH "/v1/ves/$CT" "{\"ssh_key\":\"$KEY\",\"userpasswd\":\"root:escape-pw\"}"
echo "   stopped PATCH answered $STATUS"
ve_state start || fail "start after the planted links: $OP_STATUS $BODY"
assert_eq "$(host_sums)" "$SUMS" "host files after writes at start and into a stopped VE"
check "no authorized_keys at the host's root" test ! -e /authorized_keys
vsh 'test -L /etc/hosts && echo LINK; grep -c esc2.example /etc/hosts; test -L /etc/resolv.conf && echo LINK; grep -c 192.0.2.7 /etc/resolv.conf'
assert_eq "$X_OUT" $'1\n1' "/etc/hosts and /etc/resolv.conf replaced by files of the VE's own"

begin_case "12. the delegated name=systemd subtree: only the VE's own directory is its root's"
if [ -d /sys/fs/cgroup/systemd ]; then
        api GET "/v1/ves/$CT/state"
        BASE=$(jqb .idmap.uid_base)
        assert_eq "$(stat -c %u "/sys/fs/cgroup/systemd/$INSTANCE/$CT")" "$BASE" "the VE's directory"
        assert_eq "$(stat -c %u "/sys/fs/cgroup/systemd/$INSTANCE")" 0 "the instance's directory"
        assert_eq "$(stat -c %u "/sys/fs/cgroup/memory/$INSTANCE/$CT")" 0 "a controller's directory"
        vsh 'ls /sys/fs/cgroup/systemd/release_agent 2>/dev/null && echo AGENT-SEEN
                echo /tmp/x > /sys/fs/cgroup/systemd/release_agent 2>/dev/null && echo AGENT
                echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo LIMIT
                mkdir /sys/fs/cgroup/escape 2>/dev/null && echo NEWDIR
                mount -o remount,rw /sys/fs/cgroup 2>/dev/null && mkdir /sys/fs/cgroup/escape2 2>/dev/null && echo REMOUNT
                true'
        assert_eq "$X_OUT" "" "release_agent, limits and new hierarchies from inside"
fi
assert_eq "$(cat /sys/fs/cgroup/*/release_agent 2>/dev/null | md5sum)" "$AGENTS" "host release_agents"

begin_case "13. a VE calling statfs without end cannot make ve-statfsd, which no VE pays for, use a CPU"
# Every statfs of a VE process waits for ve-statfsd's answer; past its rate
# (VE_STATFS_RATE) the VE's calls wait longer, and the server stays nearly idle.
cat >"$T/spin.c" <<'C'
#include <sys/statfs.h>
int main(void)
{
        struct statfs s;

        for (;;)
                statfs("/", &s);
}
C
check "a static statfs loop builds" gcc -O2 -static -o "$T/spin" "$T/spin.c"
check "it is copied into the VE" vectl exec "$CT" sh -c 'cat > /spin && chmod 755 /spin' <"$T/spin"
vsh '/spin </dev/null >/dev/null 2>&1 &' >/dev/null
sleep 1
check "the loop runs" pgrep -x spin >/dev/null
statfsd=$(head -1 "$STATE_DIR/statfsd.pid")
tick=$(getconf CLK_TCK)
t0=$(awk '{ print $14 + $15 }' "/proc/$statfsd/stat")
sleep 3
used=$(( $(awk '{ print $14 + $15 }' "/proc/$statfsd/stat") - t0 ))
check "ve-statfsd used $used ticks of CPU in 3 s, under 1 s ($tick)" test "$used" -lt "$tick"
vsh 'killall spin; rm -f /spin' >/dev/null 2>&1
check "df in the VE still answers" vectl exec "$CT" df / >/dev/null

begin_case "14. a VE reading lxcfs's /proc files in a loop gets lxcfs no more than its CPU share"
# lxcfs and ve-statfsd work for every VE and no VE's cgroup pays for them: they
# live in <instance>/helpers, held to an eighth of the host's CPUs (at least half
# a CPU). Two such loops kept lxcfs at 125% of a CPU before.
if [ -d /sys/fs/cgroup/cpu ]; then
        HELPERS=/sys/fs/cgroup/cpu/$INSTANCE/helpers
else
        HELPERS=/sys/fs/cgroup/$INSTANCE/helpers
fi
LXCFS=$(head -1 "$STATE_DIR/lxcfs.pid" 2>/dev/null)
check "lxcfs runs" test "$(cat "/proc/$LXCFS/comm" 2>/dev/null)" = lxcfs
check "lxcfs is in $HELPERS" grep -qx "$LXCFS" "$HELPERS/cgroup.procs"
check "ve-statfsd is there too" grep -qx "$(head -1 "$STATE_DIR/statfsd.pid")" "$HELPERS/cgroup.procs"
cat >"$T/proc.c" <<'C'
#include <fcntl.h>
#include <unistd.h>
int main(void)
{
        static char buf[65536];
        static const char *const files[] = { "/proc/meminfo", "/proc/stat", "/proc/uptime" };

        for (unsigned i = 0;; i++) {
                int fd = open(files[i % 3], O_RDONLY);

                while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
                        ;
                close(fd);
        }
}
C
check "a static /proc reading loop builds" gcc -O2 -static -o "$T/proc" "$T/proc.c"
check "it is copied into the VE" vectl exec "$CT" sh -c 'cat > /procloop && chmod 755 /procloop' <"$T/proc"
vsh '/procloop </dev/null >/dev/null 2>&1 & /procloop </dev/null >/dev/null 2>&1 &' >/dev/null
sleep 1
check "the loops run" test "$(pgrep -cx procloop)" = 2
share=$(( $(nproc) > 4 ? $(nproc) * 125 : 500 ))
t0=$(awk '{ print $14 + $15 }' "/proc/$LXCFS/stat")
sleep 3
used=$(( $(awk '{ print $14 + $15 }' "/proc/$LXCFS/stat") - t0 ))
limit=$(( ($share + 300) * 3 * tick / 1000 ))
check "lxcfs used $used ticks in 3 s, within its share of $share/1000 CPU ($limit)" \
        test "$used" -lt "$limit"
check "free in the VE still answers" vectl exec "$CT" free >/dev/null
vsh 'killall procloop; rm -f /procloop' >/dev/null 2>&1

begin_case "15. a VE that stops an entering command cannot hang an exec into it"
# Until its execve an entering command is a process of the VE named "ved", which
# the VE's root may stop (SIGSTOP cannot be blocked); its helper waits for it in
# clone. ved looks at the command every 50 ms: seen stopped, it is killed and
# the exec answers 409 at once, long before the start timeout
# (VED_TEST_EXEC_START_TIMEOUT_MS, 5 s here, 30 s by default), so that a VE
# cannot hold a worker of the daemon per exec into it (check_exec_stopper).
check_exec_stopper "$CT" 5000

begin_case "16. a VE signalling all it can while ved execs into it cannot stop the daemon"
# Between its fork and its execve an exec'd process is the VE's to signal, and it
# still has the daemon's handlers: libuv's SIGTERM handler there used to shut ved
# down. The killer ignores the signals it sends, and runs in a session of its own.
vsh "setsid sh -c 'trap \"\" TERM INT HUP QUIT USR1 USR2; while :; do kill -TERM -1; kill -INT -1; kill -HUP -1; done' </dev/null >/dev/null 2>&1 &"
sleep 0.3
check "the VE's signalling loop runs" pgrep -f "kill -TERM -1; kill -INT -1"
for i in $(seq 1 60); do
        vectl exec "$CT" true >/dev/null 2>&1
done
check "the daemon still runs" ved_running
api GET /v1/host
assert_status 200
assert_eq "$(grep -c 'Received signal' "$VED_LOG")" 0 "signals the daemon's loop was told of"
vsh 'pkill -KILL -f "kill -TERM" 2>/dev/null; kill -KILL -1; true' >/dev/null 2>&1

# Leave nothing: a VE outlives the daemon, so stop and destroy it here.
ve_state stop
api DELETE "/v1/ves/$CT"
[ "$STATUS" = 202 ] && wait_op "$(op_id_from_location)" 60
finish
