#!/usr/bin/env bash
# Running VEs outlive the daemon: after a kill -9 or a SIGTERM of ved they keep
# running, and the restarted daemon finds each again (same init) and manages it as
# before; a VE whose init died while ved was down shows stopped and is cleaned up; a
# VE whose init dies while ved runs shows stopped within seconds, with an event;
# onboot VEs (and, after a host reboot, VEs that were running with onboot unset)
# start when ved starts. Needs root.
#
#   bash tests/integration/test_persistence_runtime.sh   (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=pr$(($$ % 100000))

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi

test_cleanup()
{
        ves_teardown_all
}

# create_ve CTID [EXTRA_JSON_FIELDS]: create and wait; returns non-zero on failure.
create_ve()
{
        api POST /v1/ves "{\"ctid\":$1,\"ostemplate\":\"$TEMPLATE\"${2:+,$2}}"
        [ "$STATUS" = 202 ] || { echo "create $1 answered $STATUS: $BODY" >&2; return 1; }
        wait_op "$(op_id_from_location)" 60
        [ "$OP_STATUS" = succeeded ] || { echo "create $1: $OP_STATUS: $BODY" >&2; return 1; }
}

# action CTID start|stop|restart: POST the state change and wait; sets OP_STATUS.
action()
{
        OP_STATUS=
        api POST "/v1/ves/$1/state" "{\"action\":\"$2\"}"
        [ "$STATUS" = 202 ] || { echo "$2 $1 answered $STATUS: $BODY" >&2; return 1; }
        wait_op "$(op_id_from_location)" 60
        [ "$OP_STATUS" = succeeded ] || { echo "$2 $1: $OP_STATUS: $BODY" >&2; return 1; }
}

# status_line CTID: vectl status (vzctl's one line).
status_line()
{
        vectl status "$1" 2>&1
}

# db_pid CTID: the init pid the daemon recorded.
db_pid()
{
        sqlite3 -cmd '.timeout 5000' "$STATE_DIR/ved.db" "select pid from ves where ctid = $1" \
                2>/dev/null
}

# exec_ok CTID: a command runs in the VE (plain exec mode) and says what is expected.
exec_ok()
{
        local out

        out=$(curl -s --max-time 20 --unix-socket "$SOCK" -X POST \
                -H 'Content-Type: application/json' \
                -d '{"command":["sh","-c","cat /proc/1/comm; echo $((6*7))"]}' \
                "http://ved/v1/ves/$1/exec")
        [ "$(jq -r '.exit_code' <<<"$out" 2>/dev/null)" = 0 ] &&
                [ "$(jq -r '.stdout' <<<"$out" 2>/dev/null)" = $'init\n42' ]
}

# console_write CTID TEXT [DELAY]: a process of the VE writes TEXT to /dev/console,
# after DELAY seconds in the background when DELAY is given.
console_write()
{
        local cmd="echo $2 > /dev/console"

        [ -n "${3:-}" ] && cmd="(sleep $3; $cmd) </dev/null >/dev/null 2>&1 &"
        curl -s --max-time 20 --unix-socket "$SOCK" -X POST \
                -H 'Content-Type: application/json' \
                -d "$(jq -cn --arg c "$cmd" '{command: ["sh", "-c", $c]}')" \
                "http://ved/v1/ves/$1/exec" | jq -e '.exit_code == 0' >/dev/null
}

# console_logged CTID TEXT: TEXT is a line of the VE's console.log.
console_logged()
{
        grep -qx "$2"$'\r\\?' "$STATE_DIR/ves/$1/console.log" 2>/dev/null
}

# kill_init CTID: SIGKILL the VE's init from the host and wait for it to be gone.
# no_cgroups CTID: none of the VE's cgroup directories is left.
no_cgroups()
{
        [ -z "$(ve_cgroup_dirs "$1")" ]
}

kill_init()
{
        local pid

        pid=$(ve_init_pid "$1")
        [ -n "$pid" ] || { echo "VE $1 has no init to kill" >&2; return 1; }
        kill -KILL "$pid"
        wait_until 10 pid_gone "$pid"
}

# last_event_id: the id of the newest event so far (0 when none).
last_event_id()
{
        curl -s --max-time 10 --unix-socket "$SOCK" 'http://ved/v1/events?follow=0' |
                jq -s 'map(.id) | max // 0'
}

# events_since ID: the events after ID, one JSON object a line.
events_since()
{
        curl -s --max-time 10 --unix-socket "$SOCK" 'http://ved/v1/events?follow=0' |
                jq -c --argjson id "$1" 'select(.id > $id)'
}

is_state()
{
        [ "$(ve_state "$1")" = "$2" ]
}

ved_start || { fail "the daemon starts"; finish; }
ensure_template || { fail "the template $TEMPLATE is there"; finish; }

begin_case "three VEs created and started"
for c in 101 102 103; do
        check "create $c" create_ve $c "\"hostname\":\"ve$c\""
        check "start $c" action $c start
done
declare -A PID
for c in 101 102 103; do
        PID[$c]=$(ve_init_pid $c)
        assert_ne "${PID[$c]}" "" "VE $c's init pid"
        assert_eq "$(db_pid $c)" "${PID[$c]}" "the pid the daemon recorded for VE $c"
done

begin_case "kill -9 of ved: the three VEs keep running"
declare -A ETAG
for c in 101 102 103; do
        api GET "/v1/ves/$c"
        ETAG[$c]=$(header ETag)
done
check "VE 101 writes to its console" console_write 101 before-kill
check "the console is logged" wait_until 5 console_logged 101 before-kill
check "a process of VE 101 will write to its console in 1.5 s" console_write 101 while-down 1.5
ved_kill9
assert_eq "$VED_EXIT" 137 "ved's exit status"
sleep 0.5
for c in 101 102 103; do
        check "VE $c's init (${PID[$c]}) still runs" pid_alive "${PID[$c]}"
        assert_eq "$(ve_init_pid $c)" "${PID[$c]}" "VE $c's init in its cgroup"
done
check "what VE 101 wrote to its console while ved was down is logged" \
        wait_until 5 console_logged 101 while-down

begin_case "after the restart: all three running, with the same init"
ved_start || fail "the daemon starts again"
for c in 101 102 103; do
        assert_eq "$(status_line $c)" "CTID $c exist mounted running" "vectl status $c"
        assert_eq "$(ve_init_pid $c)" "${PID[$c]}" "VE $c's init"
        assert_eq "$(db_pid $c)" "${PID[$c]}" "the recorded pid of VE $c"
done
assert_match "$(cat "$VED_LOG")" 'VE 101 is still running' "the daemon's log"
for c in 101 102 103; do
        api GET "/v1/ves/$c"
        assert_eq "$(header ETag)" "${ETAG[$c]}" "VE $c's ETag: found again is not changed"
done

begin_case "after the restart: exec works in all three"
for c in 101 102 103; do
        check "exec in VE $c" exec_ok $c
done

begin_case "after the restart: the VE's console still works and is logged (VE 101)"
check "VE 101 writes to its console" console_write 101 after-restart
check "the console is logged" wait_until 5 console_logged 101 after-restart
assert_match "$(cat "$VED_LOG")" 'VE 101: its console, kept by ve-statfsd, is back' \
        "the daemon's log"

begin_case "after the restart: stop and start work (VE 103)"
T0=$SECONDS
check "stop 103" action 103 stop
check "stop took $((SECONDS - T0)) s, under 15 s" test $((SECONDS - T0)) -lt 15
assert_eq "$(status_line 103)" "CTID 103 exist unmounted down" "vectl status 103"
check "VE 103's old init is gone" pid_gone "${PID[103]}"
assert_eq "$(host_leftovers 103)" "" "what the host holds of VE 103"
check "start 103" action 103 start
PID[103]=$(ve_init_pid 103)
assert_ne "${PID[103]}" "" "VE 103's new init"
check "exec in VE 103" exec_ok 103

begin_case "a VE whose init is killed while ved is down shows stopped, cleaned up"
ved_kill9
check "kill VE 102's init from the host" kill_init 102
ved_start || fail "the daemon starts again"
assert_eq "$(status_line 102)" "CTID 102 exist unmounted down" "vectl status 102"
assert_eq "$(host_leftovers 102)" "" "what the host holds of VE 102"
assert_eq "$(db_pid 102)" 0 "the recorded pid of VE 102"
api GET '/v1/events?follow=0'
assert_match "$BODY" '"ctid": ?102[^}]*"state": ?"stopped"|"state": ?"stopped"[^}]*"ctid": ?102' \
        "a ve.state stopped event for VE 102"
for c in 101 103; do
        assert_eq "$(status_line $c)" "CTID $c exist mounted running" "vectl status $c"
        assert_eq "$(ve_init_pid $c)" "${PID[$c]}" "VE $c's init"
done

begin_case "VE 102 starts again after that"
check "start 102" action 102 start
check "exec in VE 102" exec_ok 102

begin_case "a VE whose init is killed while ved runs shows stopped within 5 s, with an event"
EV0=$(last_event_id)
check "kill VE 101's init from the host" kill_init 101
T0=$SECONDS
check "VE 101 shows stopped within 5 s" wait_until 5 is_state 101 stopped
echo "   (stopped after about $((SECONDS - T0)) s)"
check "its cgroups are gone within 5 s" wait_until 5 no_cgroups 101
assert_eq "$(status_line 101)" "CTID 101 exist unmounted down" "vectl status 101"
assert_eq "$(host_leftovers 101)" "" "what the host holds of VE 101"
EVENTS=$(events_since "$EV0")
assert_match "$(jq -r 'select(.ctid == 101 and .type == "ve.state") | .state' <<<"$EVENTS")" \
        'stopped' "a ve.state event saying VE 101 stopped (events: ${EVENTS:0:400})"
check "VE 103 still runs" exec_ok 103

begin_case "VE 101 starts again after that"
check "start 101" action 101 start
PID[101]=$(ve_init_pid 101)
check "exec in VE 101" exec_ok 101

begin_case "SIGTERM of ved leaves the VEs running; the restarted ved adopts them"
PID[102]=$(ve_init_pid 102)
ved_stop
assert_eq "$VED_EXIT" 0 "ved's exit status after SIGTERM"
for c in 101 102 103; do
        check "VE $c's init still runs" pid_alive "${PID[$c]}"
done
ved_start || fail "the daemon starts again"
for c in 101 102 103; do
        assert_eq "$(status_line $c)" "CTID $c exist mounted running" "vectl status $c"
        assert_eq "$(ve_init_pid $c)" "${PID[$c]}" "VE $c's init"
        check "exec in VE $c" exec_ok $c
done

begin_case "SIGTERM while a restart runs: ved exits once it is done; the VE runs its new init"
OLD=$(ve_init_pid 103)
vectl restart 103 >/dev/null 2>&1 &
RESTARTER=$!
sleep 0.1
VED_STOP_TIMEOUT=15 ved_stop
assert_eq "$?" 0 "ved exits within 15 s of SIGTERM (no SIGKILL)"
assert_eq "$VED_EXIT" 0 "ved's exit status"
wait "$RESTARTER" 2>/dev/null
ved_start || fail "the daemon starts again"
assert_eq "$(status_line 103)" "CTID 103 exist mounted running" "vectl status 103"
NEW=$(ve_init_pid 103)
assert_ne "$NEW" "$OLD" "VE 103's init is a new one"
check "exec in VE 103" exec_ok 103
PID[103]=$NEW

begin_case "an adopted running VE is destroyed with force cleanly (VE 101)"
api DELETE '/v1/ves/101?force=true'
assert_status 202
wait_op "$(op_id_from_location)" 60
assert_eq "$OP_STATUS" succeeded "destroy 101 with force"
check "VE 101's init is gone" wait_until 5 pid_gone "${PID[101]}"
assert_eq "$(host_leftovers 101)" "" "what the host holds of VE 101"
check "ves/101 is gone" test ! -e "$STATE_DIR/ves/101"

begin_case "the other two stop and are destroyed cleanly"
for c in 102 103; do
        check "stop $c" action $c stop
        api DELETE /v1/ves/$c
        wait_op "$(op_id_from_location)" 60
        assert_eq "$OP_STATUS" succeeded "destroy $c"
done
assert_eq "$(host_leftovers)" "" "what the host holds of this instance"

# --- onboot ---------------------------------------------------------------------

begin_case "onboot: VE 111 --onboot yes and VE 112 without, both started"
OUT=$(vectl create 111 --ostemplate "$TEMPLATE" --onboot yes 2>&1)
assert_eq "$?" 0 "vectl create 111 --onboot yes ($OUT)"
OUT=$(vectl create 112 --ostemplate "$TEMPLATE" 2>&1)
assert_eq "$?" 0 "vectl create 112 ($OUT)"
api GET /v1/ves/111
assert_json .onboot true
api GET /v1/ves/112
assert_json .onboot null
check "start 111" action 111 start
check "start 112" action 112 start

begin_case "simulated reboot (kill -9 of ved, every init killed, ved started): 111 runs, 112 stopped"
ved_kill9
check "kill VE 111's init" kill_init 111
check "kill VE 112's init" kill_init 112
ved_start || fail "the daemon starts again"
check "VE 111 is running again within 15 s" wait_until 15 is_state 111 running
assert_eq "$(status_line 111)" "CTID 111 exist mounted running" "vectl status 111"
check "exec in VE 111" exec_ok 111
assert_eq "$(status_line 112)" "CTID 112 exist unmounted down" "vectl status 112"
assert_eq "$(host_leftovers 112)" "" "what the host holds of VE 112"
assert_match "$(cat "$VED_LOG")" 'Starting VE 111 \(onboot\)' "the daemon's log"

begin_case "host reboot (boot id changed): onboot yes and running-with-onboot-unset VEs start"
# 111 (yes, running), 112 (unset, stopped), 113 (unset, running), 114 (no, running),
# 115 (yes, stopped).
check "create 113" create_ve 113
check "create 114" create_ve 114 '"onboot":false'
check "create 115" create_ve 115 '"onboot":true'
check "start 113" action 113 start
check "start 114" action 114 start
ved_kill9
for c in 111 113 114; do
        check "kill VE $c's init" kill_init $c
done
sqlite3 -cmd '.timeout 5000' "$STATE_DIR/ved.db" \
        "update meta set value = '00000000-0000-0000-0000-000000000000' where key = 'boot_id'"
assert_eq "$(sqlite3 "$STATE_DIR/ved.db" "select value from meta where key = 'boot_id'")" \
        00000000-0000-0000-0000-000000000000 "the faked boot id in the database"
ved_start || fail "the daemon starts again"
for c in 111 113 115; do
        check "VE $c is running within 15 s" wait_until 15 is_state $c running
        check "exec in VE $c" exec_ok $c
done
# Give a wrong start of 112 or 114 the time to show.
sleep 1
for c in 112 114; do
        assert_eq "$(status_line $c)" "CTID $c exist unmounted down" "vectl status $c"
        assert_eq "$(host_leftovers $c)" "" "what the host holds of VE $c"
done

# --- reboot and halt from inside ------------------------------------------------

# restart_ops CTID: how many restart operations of the VE there were.
restart_ops()
{
        curl -s --max-time 10 --unix-socket "$SOCK" "http://ved/v1/operations?ctid=$1&limit=1000" |
                jq '[.operations[] | select(.type == "restart")] | length'
}

# degraded_reboot_loop SINCE: a ve.degraded event about a reboot loop came after SINCE.
degraded_reboot_loop()
{
        events_since "$1" | jq -e -s 'map(select(.type == "ve.degraded" and
                (.message | test("rebooted [0-9]+ times in a row")))) | length > 0' >/dev/null
}

# init_changed CTID OLD_PID: the VE runs with another init than OLD_PID.
init_changed()
{
        local pid

        is_state "$1" running && pid=$(ve_init_pid "$1") && [ -n "$pid" ] && [ "$pid" != "$2" ]
}

# logged_since N TEXT: the daemon's log holds TEXT after its first N lines.
logged_since()
{
        tail -n +"$(($1 + 1))" "$VED_LOG" | grep -qF "$2"
}

# held_back CTID: the API says that the stopped VE is held back, when it starts
# again and after how many reboots in a row (more than 3).
held_back()
{
        curl -s --max-time 10 --unix-socket "$SOCK" "http://ved/v1/ves/$1/state" |
                jq -e '.state == "stopped" and .delayed_start.reboots >= 4 and
                        (.delayed_start.at | test("^20[0-9-]+T[0-9:]+[.][0-9]{3}Z$"))' >/dev/null
}

# status_held CTID: vectl status says so too.
status_held()
{
        vectl status -v "$1" 2>&1 | grep -Eq "^held back after [0-9]+ reboots in a row: starts at 20"
}

begin_case "reboot from inside: the VE starts again by itself, with a new init"
check "create 121" create_ve 121
check "start 121" action 121 start
OLD=$(ve_init_pid 121)
vectl exec 121 reboot -f >/dev/null 2>&1
check "VE 121 runs again, with another init, within 15 s" wait_until 15 init_changed 121 "$OLD"
check "exec in VE 121" exec_ok 121
assert_eq "$(restart_ops 121)" 1 "restart operations of VE 121"

begin_case "halt from inside: the VE shows stopped"
vectl exec 121 poweroff -f >/dev/null 2>&1
check "VE 121 is stopped within 15 s" wait_until 15 is_state 121 stopped
assert_eq "$(host_leftovers 121)" "" "what the host holds of VE 121"

begin_case "a VE rebooting at once from its boot scripts is held back, and can be stopped and destroyed"
check "start 121" action 121 start
check "its rcS reboots first thing" \
        vectl exec 121 sh -c 'sed -i "2i reboot -f" /etc/init.d/rcS'
SINCE=$(last_event_id)
vectl exec 121 reboot -f >/dev/null 2>&1
check "a ve.degraded event says it loops, within 15 s" wait_until 15 degraded_reboot_loop "$SINCE"
sleep 3
n=$(restart_ops 121)
check "only a few restarts ($n): 4 at once, then one per delay" test "$n" -le 6
check "it is stopped while held back" wait_until 5 is_state 121 stopped
check "GET state says when it starts again, and after how many reboots" wait_until 15 held_back 121
check "vectl status says it is held back, and until when" wait_until 15 status_held 121
# The delayed start is the store's too: a daemon killed meanwhile still makes it,
# and the loop goes on (the next fast reboot is held back again, with an event).
SINCE=$(last_event_id)
ved_kill9
ved_start || fail "the daemon starts again"
check "after a kill -9 of ved, VE 121 is started again and held back again, within 30 s" \
        wait_until 30 degraded_reboot_loop "$SINCE"
check "it is stopped while held back" wait_until 5 is_state 121 stopped
# After a host reboot the loop is a thing of the last boot: the VE, one that was
# running (onboot unset), starts at once with the others, and loops again.
SINCE=$(last_event_id)
ved_kill9
for c in 111 113 115; do
        check "kill VE $c's init" kill_init $c
done
sqlite3 -cmd '.timeout 5000' "$STATE_DIR/ved.db" \
        "update meta set value = '00000000-0000-0000-0000-000000000000' where key = 'boot_id'"
LOG_LINES=$(wc -l <"$VED_LOG")
ved_start || fail "the daemon starts again"
check "after a host reboot, held-back VE 121 starts at once with the others" \
        wait_until 15 logged_since "$LOG_LINES" 'Starting VE 121 (onboot)'
check "and is held back again, within 30 s" wait_until 30 degraded_reboot_loop "$SINCE"
check "it is stopped while held back" wait_until 15 held_back 121
api POST /v1/ves/121/state '{"action":"stop"}'
assert_status 409
assert_match "$(jq -r .error.message <<<"$BODY")" "held back after a reboot loop" "the answer to stop"
sleep 5
assert_eq "$(ve_state 121)" stopped "VE 121 after a stop asked while it was held back: no delayed start"
api GET /v1/ves/121/state
assert_json '.delayed_start' null "delayed_start once the stop cancelled it"
api DELETE "/v1/ves/121"
assert_status 202
wait_op "$(op_id_from_location)" 60
assert_eq "$OP_STATUS" succeeded "destroy of VE 121"
assert_eq "$(host_leftovers 121)" "" "what the host holds of VE 121"

begin_case "at the end: all destroyed, nothing of this instance on the host"
for c in 111 112 113 114 115; do
        api DELETE "/v1/ves/$c?force=true"
        assert_status 202
        wait_op "$(op_id_from_location)" 60
        assert_eq "$OP_STATUS" succeeded "destroy $c"
done
assert_eq "$(host_leftovers)" "" "what the host holds of this instance"

finish
