#!/usr/bin/env bash
# VEs on a cgroup v2 host: a Debian VE boots systemd in unified mode until
# `systemctl is-system-running` says running, with its own delegated cgroup2
# subtree, stops cleanly by SIGRTMIN+3, and a busybox VE runs next to it (an exec
# into it whose command the VE stops fails alone); the daemon says which limits
# the host leaves it unable to enforce. Needs root.
#
# On a pure cgroup v2 host the daemon runs as it is. On a hybrid host (v1
# controllers with a cgroup2 mount at /sys/fs/cgroup/unified, as the CI machine)
# the daemon runs in a mount namespace of its own where that same cgroup2
# hierarchy is mounted at /sys/fs/cgroup: to ved and its VEs the host is then
# cgroup v2, with no controllers delegated (the v1 hierarchies hold them).
#
#   bash tests/integration/test_cgroup2.sh      (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=cg$(($$ % 100000))
CT=401
BB=402

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi

test_cleanup()
{
        ves_teardown_all
}

# The cgroup2 hierarchy and the daemon that sees it at /sys/fs/cgroup.
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        V2=/sys/fs/cgroup
elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
        V2=/sys/fs/cgroup/unified
        cat >"$T/ved-v2" <<EOF
#!/bin/sh
# ved in a mount namespace whose /sys/fs/cgroup is the host's cgroup2 hierarchy.
exec unshare --mount --propagation private sh -c \
        'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "\$0" "\$@"' "$VED_BIN" "\$@"
EOF
        chmod +x "$T/ved-v2"
        VED_BIN=$T/ved-v2
else
        fail "this host has a cgroup2 hierarchy (at /sys/fs/cgroup or /sys/fs/cgroup/unified)"
        finish
fi

export VED_TEST_EXEC_START_TIMEOUT_MS=5000 # the stopped command's case
ved_start || { fail "the daemon starts"; finish; }

begin_case "the daemon runs on cgroup v2"
api GET /v1/host
assert_status 200
assert_json .cgroup v2

begin_case "a Debian VE boots systemd on cgroup v2 until 'running'"
if ! ensure_debian_template; then
        fail "the Debian template is there"
        finish
fi
OUT=$(vectl create "$CT" --ostemplate "$DEBIAN_TEMPLATE" --hostname v2.example.com \
        --ram 512M --numproc 500 2>&1)
assert_eq "$?" 0 "vectl create: $OUT"
start_systemd_ve "$CT"
ve_run "$CT" stat -fc %T /sys/fs/cgroup
assert_eq "$OUT" cgroup2fs "the VE's /sys/fs/cgroup is cgroup2 (systemd's unified mode)"
ve_run "$CT" sh -c 'grep "^0::" /proc/self/cgroup'
assert_match "$OUT" '^0::/' "the VE's processes on cgroup2"
check "in a cgroup namespace of their own: the host's path ($INSTANCE/$CT) is not shown ($OUT)" \
        test -n "$OUT" -a "${OUT#*"$INSTANCE"}" = "$OUT"
ve_run "$CT" systemctl is-active systemd-journald systemd-logind ssh
assert_eq "$OUT" $'active\nactive\nactive' "journald, logind, sshd"
ve_run "$CT" ss -ltn
assert_match "$OUT" ':22 ' "sshd listens"
ve_run "$CT" hostname
assert_eq "$OUT" v2.example.com "hostname"
check "systemd made its slices in the VE's delegated cgroup on the host" \
        test -d "$V2/$INSTANCE/$CT/system.slice"
check "sshd runs in its own unit's cgroup" \
        test -d "$V2/$INSTANCE/$CT/system.slice/ssh.service"
check "the VE owns its cgroup directory, not the files that hold its limits" \
        test "$(stat -c %u "$V2/$INSTANCE/$CT")" != 0 -a \
        "$(stat -c %u "$V2/$INSTANCE/$CT/cgroup.max.descendants")" = 0

begin_case "limits the host does not delegate are named, not silently dropped"
AVAIL=$(cat "$V2/$INSTANCE/cgroup.controllers")
if [[ " $AVAIL " == *" memory "* ]]; then
        check "memory.max holds --ram" test "$(cat "$V2/$INSTANCE/$CT/memory.max")" = 536870912
        check "pids.max holds --numproc" test "$(cat "$V2/$INSTANCE/$CT/pids.max")" = 500
else
        check "an event ve.degraded for VE $CT" events_over ve.degraded "$CT" 0
        assert_match "$(cat "$VED_LOG")" "VE $CT: the host gives ved no cgroup controller .*memory" \
                "the daemon's log names the missing controllers"
        api GET "/v1/ves/$CT/usage"
        assert_status 200
        assert_json .memory.limit null
        # Changed on the running VE, such a limit is refused, not dropped.
        api GET "/v1/ves/$CT"
        RAM=$(jqb .ram)
        api PATCH "/v1/ves/$CT" '{"ram":"256M"}'
        assert_error 501
        assert_match "$(jqb .error.message)" 'ram cannot be enforced: .* no memory cgroup controller' \
                "the message"
        api GET "/v1/ves/$CT"
        assert_json .ram "$RAM" "ram unchanged"
fi

begin_case "a busybox VE runs next to it"
ensure_template || fail "the busybox template imports"
OUT=$(vectl create "$BB" --ostemplate "$TEMPLATE" 2>&1)
assert_eq "$?" 0 "vectl create: $OUT"
OUT=$(vectl start "$BB" 2>&1)
assert_eq "$?" 0 "vectl start: $OUT"
ve_run "$BB" sh -c 'echo hello; exit 3'
assert_eq "$OUT" hello "exec output"
assert_eq "$RC" 3 "exec exit status"
check "its cgroup on the host" test -d "$V2/$INSTANCE/$BB"

begin_case "a command the VE stops before its execve fails its exec, not the daemon"
# On cgroup v2 the exec helper is forked into the VE's cgroup (clone3), and it
# writes the command's pid in a page shared with the daemon (ve/exec.c).
check_exec_stopper "$BB" 5000

begin_case "vectl stop shuts systemd down cleanly in under 10 s"
stop_systemd_ve "$CT"
OUT=$(vectl stop "$BB" 2>&1)
assert_eq "$?" 0 "vectl stop busybox: $OUT"

begin_case "destroy leaves nothing of either VE"
OUT=$(vectl destroy "$CT" 2>&1)
assert_eq "$?" 0 "destroy $CT: $OUT"
OUT=$(vectl destroy "$BB" 2>&1)
assert_eq "$?" 0 "destroy $BB: $OUT"
assert_eq "$(host_leftovers)" "" "loop devices and cgroups"
check "no cgroup of the VEs in the cgroup2 hierarchy" test ! -e "$V2/$INSTANCE/$CT" -a ! -e "$V2/$INSTANCE/$BB"
assert_eq "$(awk -v s="$STATE_DIR/ves/" 'index($5, s) == 1' "/proc/$VED_PID/mountinfo")" "" \
        "no mounts in the daemon's namespace"

finish
