#!/usr/bin/env bash
# A full disk under the state directory: the VEs' images and the database share
# a file system, and a VE that writes into its sparse image can fill it. ved
# keeps a reserve beside its database (ved.db-reserve) and gives it back when the
# file system is nearly full, so that operations still get recorded; once it is
# full to the last block, requests fail at once with a message that says so
# (never a client left waiting), the daemon stays up, and everything works again
# when space is freed. The state directory is on a small ext4 image of the test's
# own. Needs root.
#
#   bash tests/integration/test_disk_full.sh      (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=df$(($$ % 100000))

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi

FS_IMG=$T/fs.img
FS=$T/fs
STATE_DIR=$FS/state
RESERVE=$STATE_DIR/ved.db-reserve

test_cleanup()
{
        ves_teardown_all
        ved_stop >/dev/null 2>&1 || ved_kill9
        helpers_cleanup
        if mountpoint -q "$FS"; then
                umount "$FS" || umount -l "$FS"
        fi
}

# room: bytes an unprivileged writer may still take (root may take the root
# reserve too, 5% of the file system).
room()
{
        local avail bsize

        read -r avail bsize < <(stat -f -c '%a %S' "$FS")
        echo $((avail * bsize))
}

# fill_leaving BYTES: take the space but BYTES of what room says.
fill_leaving()
{
        local n=$(($(room) - $1))

        [ "$n" -gt 0 ] || return 0
        fallocate -l "$n" "$FS/fill.$RANDOM"
}

# fill_up: take the last block root may write (the root reserve too). The bulk
# is allocated at once: written by dd it took seconds on a slow day, longer
# than the stop that the first case fills the disk under.
fill_up()
{
        local free bsize

        read -r free bsize < <(stat -f -c '%f %S' "$FS")
        [ "$free" -gt 64 ] && fallocate -l $(((free - 64) * bsize)) "$FS/fill.bulk" 2>/dev/null
        dd if=/dev/zero of="$FS/fill.last" bs=64k 2>/dev/null
        dd if=/dev/zero of="$FS/fill.last2" bs=1k 2>/dev/null
        return 0
}

# timed vectl ARGS...: run vectl (killed after 60 s: a client left waiting), OUT
# gets its output, RC its exit code, ELAPSED its seconds.
timed()
{
        local t0=$SECONDS

        shift
        OUT=$(timeout 60 "$VECTL_BIN" --socket "$SOCK" "$@" 2>&1)
        RC=$?
        ELAPSED=$((SECONDS - t0))
}

truncate -s 256M "$FS_IMG" && mkfs.ext4 -q "$FS_IMG" && mkdir -p "$FS" &&
        mount -o loop "$FS_IMG" "$FS" || { fail "the small file system mounts"; finish; }
ved_start || { fail "the daemon starts"; finish; }

begin_case "at startup the daemon keeps a reserve beside its database"
check "ved.db-reserve is there" test -s "$RESERVE"
assert_eq "$(stat -c %s "$RESERVE" 2>/dev/null)" $((8 << 20)) "its size"

begin_case "a running VE, created and started while there is room"
timed vectl create 101 --ostemplate "$TEMPLATE"
assert_eq "$RC" 0 "vectl create 101 ($OUT)"
timed vectl start 101
assert_eq "$RC" 0 "vectl start 101 ($OUT)"

begin_case "the disk fills while a stop waits for its init: the stop's end is still recorded"
timed vectl create 104 --ostemplate "$TEMPLATE" --stop-timeout 4
assert_eq "$RC" 0 "vectl create 104 ($OUT)"
timed vectl start 104
assert_eq "$RC" 0 "vectl start 104 ($OUT)"
# Its next init ignores the halt signal: the stop waits its 4 s timeout.
timed vectl exec 104 sh -c 'printf "#!/bin/sh\ntrap \"\" PWR TERM\nwhile :; do sleep 1; done\n" \
        >/sbin/stubborn && chmod 755 /sbin/stubborn'
assert_eq "$RC" 0 "write /sbin/stubborn ($OUT)"
timed vectl stop 104
timed vectl set 104 --init /sbin/stubborn
assert_eq "$RC" 0 "vectl set 104 --init ($OUT)"
timed vectl start 104
assert_eq "$RC" 0 "vectl start 104 with the stubborn init ($OUT)"
api POST /v1/ves/104/state '{"action":"stop"}'
assert_status 202
OP=$(op_id_from_location)
fill_up
check "the file system is full" test "$(stat -f -c %a "$FS")" -eq 0
wait_op "$OP" 30
assert_eq "$OP_STATUS" succeeded "the stop, recorded on the full disk ($BODY)"
check "the reserve was given back for it" test ! -e "$RESERVE"
assert_match "$(cat "$VED_LOG")" "reserve is given back" "the log says so"
api GET /v1/ves/104
assert_json .state stopped
rm -f "$FS"/fill.*
check "the reserve is made again (on the daemon's next tick)" wait_until 15 test -s "$RESERVE"

begin_case "a nearly full file system: the reserve is given back, operations still work"
fill_leaving $((2 << 20))
timed vectl create 102 --ostemplate "$TEMPLATE"
assert_eq "$RC" 0 "vectl create 102 on a nearly full disk ($OUT)"
check "the reserve is given back" test ! -e "$RESERVE"
timed vectl stop 101
assert_eq "$RC" 0 "vectl stop 101 ($OUT)"
api GET /v1/ves/101
assert_json .state stopped

begin_case "a full file system: requests fail at once and say why; the daemon stays up"
fill_up
timed vectl create 103 --ostemplate "$TEMPLATE"
assert_ne "$RC" 0 "vectl create 103 on a full disk fails"
assert_match "$OUT" "is full" "its message ($OUT)"
check "it did not wait (${ELAPSED}s)" test "$ELAPSED" -lt 10
timed vectl start 101
assert_ne "$RC" 0 "vectl start 101 on a full disk fails"
assert_match "$OUT" "is full" "its message ($OUT)"
api POST /v1/ves/101/state '{"action":"start"}'
assert_match "$STATUS" '^5[0-9][0-9]$' "POST start: a server error"
assert_match "$(jqb .error.message)" "is full" "its JSON error"
check "the daemon is up" ved_running
timed vectl list -a
assert_eq "$RC" 0 "vectl list still answers ($OUT)"
assert_match "$OUT" "101 .*stopped" "VE 101 is listed stopped"
check "no VE 103" test ! -e "$STATE_DIR/ves/103"
api GET /v1/ves/103
assert_error 404
# Its operation was never recorded: the log does not say it started.
assert_eq "$(grep -c 'of VE 103 started' "$VED_LOG")" 0 "log lines of the refused create"

begin_case "space freed: the reserve comes back and everything works again"
rm -f "$FS"/fill.*
check "the reserve is made again (on the daemon's next tick)" wait_until 15 test -s "$RESERVE"
timed vectl start 101
assert_eq "$RC" 0 "vectl start 101 ($OUT)"
assert_eq "$(vectl exec 101 echo hi 2>&1)" hi "exec in VE 101"
timed vectl create 103 --ostemplate "$TEMPLATE"
assert_eq "$RC" 0 "vectl create 103 ($OUT)"
for ctid in 101 102 103 104; do
        timed vectl destroy "$ctid" --force
        assert_eq "$RC" 0 "vectl destroy $ctid ($OUT)"
done
api GET '/v1/operations?status=running'
assert_json '[.operations[]? | select(.status == "running")] | length' 0
assert_eq "$(host_leftovers)" "" "what the host holds of the VEs"

finish
