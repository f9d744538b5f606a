#!/usr/bin/env bash
# kill -9 of ved inside create, start, stop, restart, destroy and template import:
# the daemon's test hook (VED_TEST_CRASH_AT=<type>:<step>, daemon/ops.c) makes it
# _exit(137) right after a step's work and before recording it. The restarted ved
# must resolve the operation (succeeded or failed, with a resolution), leave no half
# VE and nothing orphaned on the host (loop device, mount, cgroup, staging or upload
# file), and leave each VE really running or really stopped: an interrupted start,
# stop or restart runs again and ends as asked. Then kill -9 at moments no hook
# chooses: while init halts, and at random under concurrent commands. Needs root.
#
#   bash tests/integration/test_crash_recovery.sh   (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=cr$(($$ % 100000))

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi

test_cleanup()
{
        ves_teardown_all
}

# crash_daemon POINT: (re)start ved with VED_TEST_CRASH_AT=POINT.
crash_daemon()
{
        ved_stop
        VED_TEST_CRASH_AT=$1 ved_start
}

# request_op METHOD PATH [BODY]: send a request that starts an operation; sets OP (its
# id, "" when refused).
request_op()
{
        api "$@"
        OP=
        [ "$STATUS" = 202 ] && OP=$(op_id_from_location)
        [ -n "$OP" ] || echo "$1 $2 answered $STATUS: $BODY" >&2
}

# run_op METHOD PATH [BODY]: an operation that must succeed (no crash expected).
run_op()
{
        request_op "$@"
        [ -n "$OP" ] || return 1
        wait_op "$OP" 60
        [ "$OP_STATUS" = succeeded ] || { echo "operation $OP: $OP_STATUS: $BODY" >&2; return 1; }
}

# expect_crash_and_restart POINT: the daemon must die of the hook (status 137) within
# 30 s; then it is started again without the hook.
expect_crash_and_restart()
{
        if ved_wait_exit 30; then
                assert_eq "$VED_EXIT" 137 "ved's exit status at $1"
                assert_match "$(tail -n 5 "$VED_LOG")" "VED_TEST_CRASH_AT=$1: exiting now" \
                        "the hook fired at $1"
        else
                fail "ved did not exit at $1 within 30 s"
                ved_kill9
        fi
        ved_start || fail "ved starts again after the crash at $1"
}

# assert_resolved OP: the interrupted operation is finished (an interrupted start,
# stop or restart runs again after the restart: waited for), with a resolution.
assert_resolved()
{
        wait_op "$1" 60
        api GET "/v1/operations/$1"
        assert_status 200
        assert_json '.status | IN("succeeded", "failed")' true "operation $1's status ($BODY)"
        assert_json '.resolution | type == "string" and length > 0' true \
                "operation $1's resolution"
        assert_json '.finished_at != null' true "operation $1's finished_at"
        echo "   (operation $1: $(jqb .status), resolution: $(jqb .resolution))"
}

# exec_works CTID: a command runs in the VE, which has its pid 1 (init, or
# slowhalt below).
exec_works()
{
        local out

        out=$(curl -s --max-time 20 --unix-socket "$SOCK" -X POST \
                -H 'Content-Type: application/json' \
                -d '{"command":["cat","/proc/1/comm"]}' "http://ved/v1/ves/$1/exec")
        [ "$(jq -r '.exit_code' <<<"$out" 2>/dev/null)" = 0 ] &&
                [[ $(jq -r '.stdout' <<<"$out" 2>/dev/null) =~ ^(init|slowhalt)$ ]]
}

# assert_consistent: every VE the daemon lists is really in its state (running: its
# init answers exec and it has its cgroup, loop device and mount; stopped: the host
# holds nothing of it), and the host holds nothing beyond the running VEs: no
# loop device, mount or cgroup of anything else, no staging or upload file.
assert_consistent()
{
        local ves ctid state left
        local -a running=()

        api GET /v1/ves
        ves=$(jqb '.ves[] | "\(.ctid) \(.state)"')
        while read -r ctid state; do
                [ -n "$ctid" ] || continue
                case $state in
                running)
                        running+=("$ctid")
                        check "VE $ctid is running: exec works" exec_works "$ctid"
                        assert_ne "$(ve_init_pid "$ctid")" "" "VE $ctid's init"
                        assert_ne "$(host_leftovers "$ctid" | grep -c '^loop device')" 0 \
                                "VE $ctid's loop device"
                        ;;
                stopped)
                        assert_eq "$(host_leftovers "$ctid")" "" "what the host holds of stopped VE $ctid"
                        assert_eq "$(ve_init_pid "$ctid")" "" "stopped VE $ctid's init"
                        ;;
                *)
                        fail "VE $ctid is $state after recovery (want running or stopped)"
                        ;;
                esac
        done <<<"$ves"
        left=$(host_leftovers)
        for ctid in "${running[@]}"; do
                left=$(grep -v -e "/ves/$ctid/" -e "/$INSTANCE/$ctid\$" <<<"$left")
        done
        assert_eq "$left" "" "loop devices, mounts or cgroups of no running VE"
        assert_eq "$(template_leftovers)" "" "staging, upload or temporary image files in templates/"
        api GET '/v1/operations?status=running'
        assert_eq "$(jqb '[.operations[]? | select(.status == "running" or .status == "pending")] | length')" \
                0 "operations still running"
}

# ve_gone CTID: no record and no directory.
assert_ve_gone()
{
        api GET "/v1/ves/$1"
        assert_error 404
        check "ves/$1 is gone" test ! -e "$STATE_DIR/ves/$1"
        assert_eq "$(host_leftovers "$1")" "" "what the host holds of VE $1"
}

# bring_to CTID running|stopped: make the VE so (after a start or stop crash).
bring_to()
{
        local now

        now=$(ve_state "$1")
        [ "$now" = "$2" ] && return 0
        case $2 in
        running) run_op POST "/v1/ves/$1/state" '{"action":"start"}' ;;
        stopped) run_op POST "/v1/ves/$1/state" '{"action":"stop"}' ;;
        esac
}

ved_start || { fail "the daemon starts"; finish; }

begin_case "crash at create:template (a create that builds its template): no VE, no template"
crash_daemon create:template || fail "ved starts with the hook"
request_op POST /v1/ves "{\"ctid\":106,\"ostemplate\":\"$TEMPLATE\"}"
assert_ne "$OP" "" "create 106 accepted (its template not imported yet)"
expect_crash_and_restart create:template
assert_resolved "$OP"
assert_json .status failed
assert_ve_gone 106
api GET "/v1/templates/$TEMPLATE"
assert_error 404
check "no image of the unrecorded template" test ! -e "$STATE_DIR/templates/$TEMPLATE.img"
assert_consistent

# A recipe that builds nothing: it waits, and on SIGTERM says so and exits.
mkdir -p "$T/recipes/$TEMPLATE"
cat >"$T/recipes/$TEMPLATE/build" <<EOF
#!/bin/sh
trap 'kill \$!; touch "$T/recipe-terminated"; exit 143' TERM
sleep 60 &
wait
EOF
chmod +x "$T/recipes/$TEMPLATE/build"

# recipe_running: the daemon's build of $TEMPLATE with that recipe.
recipe_running()
{
        pgrep -f -- "$T/recipes/$TEMPLATE/build" >/dev/null
}

recipe_gone()
{
        ! recipe_running
}

begin_case "kill -9 of ved while a create's recipe builds the template: the recipe gets SIGTERM"
ved_stop
ved_start --template-recipes "$T/recipes" || fail "ved starts with the waiting recipe"
request_op POST /v1/ves "{\"ctid\":107,\"ostemplate\":\"$TEMPLATE\"}"
assert_ne "$OP" "" "create 107 accepted (its template not imported yet)"
check "the recipe runs" wait_until 10 recipe_running
ved_kill9
check "the recipe got SIGTERM" wait_until 10 test -e "$T/recipe-terminated"
check "the recipe ended" wait_until 10 recipe_gone
ved_start || fail "ved starts again after the kill"
assert_resolved "$OP"
assert_json .status failed
assert_ve_gone 107
api GET "/v1/templates/$TEMPLATE"
assert_error 404
check "no image of the unrecorded template" test ! -e "$STATE_DIR/templates/$TEMPLATE.img"
assert_consistent

ensure_template || { fail "the template $TEMPLATE is there"; finish; }

begin_case "setup: VE 101 created (stopped)"
check "create 101" run_op POST /v1/ves "{\"ctid\":101,\"ostemplate\":\"$TEMPLATE\",\"hostname\":\"c101\"}"

# --- create -----------------------------------------------------------------

begin_case "crash at create:private: the half-created VE is removed"
crash_daemon create:private || fail "ved starts with the hook"
request_op POST /v1/ves "{\"ctid\":102,\"ostemplate\":\"$TEMPLATE\"}"
assert_ne "$OP" "" "create 102 accepted"
expect_crash_and_restart create:private
assert_resolved "$OP"
assert_json .status failed
assert_ve_gone 102
assert_consistent

begin_case "after it: CTID 102 can be created"
check "create 102" run_op POST /v1/ves "{\"ctid\":102,\"ostemplate\":\"$TEMPLATE\"}"
assert_consistent

# --- start ------------------------------------------------------------------

for step in mount cgroup config init; do
        begin_case "crash at start:$step: VE 101 really running or really stopped"
        bring_to 101 stopped || fail "VE 101 stopped before the crash"
        crash_daemon "start:$step" || fail "ved starts with the hook"
        request_op POST /v1/ves/101/state '{"action":"start"}'
        assert_ne "$OP" "" "start 101 accepted"
        expect_crash_and_restart "start:$step"
        assert_resolved "$OP"
        # The start was accepted: the restarted ved carries it out.
        assert_json .status succeeded "the start's status"
        assert_json .resolution "rolled forward: run again from its first step after the restart"
        assert_eq "$(ve_state 101)" running "VE 101's state after the recovery"
        assert_consistent

        begin_case "after start:$step: VE 101 starts and stops"
        bring_to 101 stopped || fail "stop 101"
        check "start 101" bring_to 101 running
        check "exec in 101" exec_works 101
        check "stop 101" bring_to 101 stopped
        assert_consistent
done

# --- stop -------------------------------------------------------------------

for step in signal kill; do
        begin_case "crash at stop:$step: VE 101 really running or really stopped"
        crash_daemon "stop:$step" || fail "ved starts with the hook"
        check "start 101 (with the stop hook armed)" bring_to 101 running
        PID=$(ve_init_pid 101)
        request_op POST /v1/ves/101/state '{"action":"stop"}'
        assert_ne "$OP" "" "stop 101 accepted"
        expect_crash_and_restart "stop:$step"
        assert_resolved "$OP"
        assert_json .status succeeded "the stop's status"
        assert_eq "$(ve_state 101)" stopped "VE 101's state after the recovery"
        check "VE 101's init $PID is gone" wait_until 5 pid_gone "$PID"
        assert_consistent

        begin_case "after stop:$step: VE 101 starts and stops"
        check "start 101" bring_to 101 running
        check "exec in 101" exec_works 101
        check "stop 101" bring_to 101 stopped
        assert_consistent
done

# --- restart (between its stop half and its start half) ---------------------

begin_case "crash at restart:kill: VE 101 really running or really stopped"
crash_daemon restart:kill || fail "ved starts with the hook"
check "start 101" bring_to 101 running
request_op POST /v1/ves/101/state '{"action":"restart"}'
assert_ne "$OP" "" "restart 101 accepted"
expect_crash_and_restart restart:kill
assert_resolved "$OP"
assert_json .status succeeded "the restart's status"
assert_eq "$(ve_state 101)" running "VE 101's state after the recovery"
assert_consistent
check "stop 101" bring_to 101 stopped

# --- a stop or restart cut while init halts ---------------------------------
# An init that takes 3 s to halt: the daemon is killed while the stop waits for
# it. The restarted ved must finish the stop (not call it failed while the VE
# goes down on its own), and a restart must end with a new init, not the old
# one found still halting.

# slow_halt_ve CTID: VE CTID running with such an init.
slow_halt_ve()
{
        run_op POST /v1/ves "{\"ctid\":$1,\"ostemplate\":\"$TEMPLATE\",\"stop_timeout\":60}" &&
                bring_to "$1" running &&
                ve_run "$1" sh -c 'printf "#!/bin/sh\ntrap \"touch /halting; sleep 3; exit 0\" PWR\nwhile :; do sleep 1; done\n" >/sbin/slowhalt && chmod 755 /sbin/slowhalt' &&
                [ "$RC" = 0 ] && bring_to "$1" stopped &&
                vectl set "$1" --init /sbin/slowhalt >/dev/null && bring_to "$1" running
}

# kill_while_halting CTID ACTION: vectl ACTION CTID in the background (VECTL_PID,
# its output in $T/vectl.out), kill -9 ved once init has the halt signal, start
# ved again. OP is the operation's id.
kill_while_halting()
{
        vectl "$2" "$1" >"$T/vectl.out" 2>&1 &
        VECTL_PID=$!
        check "init of $1 got the halt signal" \
                wait_until 10 test -e "$STATE_DIR/ves/$1/private/halting"
        OP=$(sqlite3 -cmd '.timeout 5000' "$STATE_DIR/ved.db" \
                "select max(id) from operations where ctid = $1 and type = '$2'")
        ved_kill9
        ved_start || fail "ved starts again"
}

# vectl_waited ACTION: the vectl of kill_while_halting waited through the
# daemon's absence and says the operation is done.
vectl_waited()
{
        wait "$VECTL_PID"
        assert_eq "$?" 0 "vectl $1's exit status ($(cat "$T/vectl.out"))"
        assert_match "$(cat "$T/vectl.out")" "lost ved while waiting for operation $OP" \
                "vectl $1 said it lost ved"
        assert_match "$(cat "$T/vectl.out")" "done$" "vectl $1 ends with done"
}

begin_case "kill -9 while a stop waits for init to halt: the restarted ved finishes it, vectl waits through"
check "VE 105 runs an init that halts in 3 s" slow_halt_ve 105
PID=$(ve_init_pid 105)
kill_while_halting 105 stop
assert_resolved "$OP"
vectl_waited stop
assert_json .status succeeded "the stop's status"
assert_json .resolution "rolled forward: run again from its first step after the restart"
assert_eq "$(ve_state 105)" stopped "VE 105's state"
check "VE 105's init $PID is gone" pid_gone "$PID"
assert_consistent

begin_case "kill -9 while a restart waits for init to halt: the VE runs a new init, vectl waits through"
check "VE 105 starts" bring_to 105 running
PID=$(ve_init_pid 105)
rm -f "$STATE_DIR/ves/105/private/halting"
kill_while_halting 105 restart
assert_resolved "$OP"
vectl_waited restart
assert_json .status succeeded "the restart's status"
assert_eq "$(ve_state 105)" running "VE 105's state"
NEWPID=$(ve_init_pid 105)
assert_ne "$NEWPID" "" "VE 105's new init"
assert_ne "$NEWPID" "$PID" "VE 105's init is a new one"
sleep 4 # past the old init's halt
assert_eq "$(ve_state 105)" running "VE 105's state 4 s later"
assert_consistent
check "destroy 105" run_op DELETE '/v1/ves/105?force=true'

# --- destroy ----------------------------------------------------------------

begin_case "crash at destroy:private of a stopped VE: the VE is gone"
crash_daemon destroy:private || fail "ved starts with the hook"
request_op DELETE /v1/ves/101
assert_ne "$OP" "" "destroy 101 accepted"
expect_crash_and_restart destroy:private
assert_resolved "$OP"
assert_json .status succeeded
assert_ve_gone 101
assert_consistent

begin_case "crash at destroy:private of a running VE (force): the VE is gone"
crash_daemon destroy:private || fail "ved starts with the hook"
check "start 102" bring_to 102 running
PID=$(ve_init_pid 102)
request_op DELETE '/v1/ves/102?force=true'
assert_ne "$OP" "" "destroy 102 accepted"
expect_crash_and_restart destroy:private
assert_resolved "$OP"
assert_json .status succeeded
assert_ve_gone 102
check "VE 102's init is gone" wait_until 5 pid_gone "$PID"
assert_consistent

# --- a finish that cannot be recorded ----------------------------------------
# VED_TEST_FAIL_FINISH=<type> (daemon/ops.c) fails the transaction that records an
# operation's result, as a full disk or an I/O error would: the work is undone as
# for a failed step, and the operation fails.

begin_case "a start whose result cannot be recorded: its init is torn down again"
check "create 108" run_op POST /v1/ves "{\"ctid\":108,\"ostemplate\":\"$TEMPLATE\"}"
ved_stop
VED_TEST_FAIL_FINISH=start ved_start || fail "ved starts with the hook"
LOG_AT=$(wc -l <"$VED_LOG")
request_op POST /v1/ves/108/state '{"action":"start"}'
assert_ne "$OP" "" "start 108 accepted"
wait_op "$OP" 60
assert_eq "$OP_STATUS" failed "the start's status"
assert_json '.error.message' "VED_TEST_FAIL_FINISH=start: the result not recorded"
assert_eq "$(ve_state 108)" stopped "VE 108's state"
assert_eq "$(ve_init_pid 108)" "" "VE 108's init"
assert_eq "$(host_leftovers 108)" "" "what the host holds of VE 108"
# The teardown's kill of init is the operation's own, not an exit to handle.
assert_eq "$(tail -n +"$LOG_AT" "$VED_LOG" | grep -c 'cannot clean up after its init')" 0 \
        "no stop started for the torn-down init"
assert_consistent

begin_case "a restart whose result cannot be recorded: VE 108 ends stopped, nothing left"
ved_stop
ved_start || fail "ved starts without the hook"
check "start 108" bring_to 108 running
ved_stop
VED_TEST_FAIL_FINISH=restart ved_start || fail "ved starts with the hook"
request_op POST /v1/ves/108/state '{"action":"restart"}'
assert_ne "$OP" "" "restart 108 accepted"
wait_op "$OP" 60
assert_eq "$OP_STATUS" failed "the restart's status"
assert_eq "$(ve_state 108)" stopped "VE 108's state"
assert_eq "$(ve_init_pid 108)" "" "VE 108's init"
assert_eq "$(host_leftovers 108)" "" "what the host holds of VE 108"
assert_consistent

begin_case "a create whose result cannot be recorded: no record and no image left"
ved_stop
VED_TEST_FAIL_FINISH=create ved_start || fail "ved starts with the hook"
request_op POST /v1/ves "{\"ctid\":109,\"ostemplate\":\"$TEMPLATE\"}"
assert_ne "$OP" "" "create 109 accepted"
wait_op "$OP" 60
assert_eq "$OP_STATUS" failed "the create's status"
assert_ve_gone 109
assert_consistent

begin_case "without the hook: VE 108 starts and CTID 109 can be created"
ved_stop
ved_start || fail "ved starts without the hook"
check "start 108" bring_to 108 running
check "exec in 108" exec_works 108
check "create 109" run_op POST /v1/ves "{\"ctid\":109,\"ostemplate\":\"$TEMPLATE\"}"
check "destroy 109" run_op DELETE /v1/ves/109
check "destroy 108" run_op DELETE '/v1/ves/108?force=true'
assert_consistent

# --- template import --------------------------------------------------------

begin_case "crash at template-import:import: no staging, upload or image left"
crash_daemon template-import:import || fail "ved starts with the hook"
TARBALL=$(template_tarball)
# The POST answers once the tarball is accepted, which the crash comes before:
# the operation is found in the store, by its name (an older import must not do).
api --ct application/octet-stream POST "/v1/templates?name=crashed" "@$TARBALL"
expect_crash_and_restart template-import:import
OP=$(sqlite3 "$STATE_DIR/ved.db" "select max(id) from operations where type='template-import' \
        and json_extract(params, '\$.name') = 'crashed'")
assert_ne "$OP" "" "the import of 'crashed' was recorded"
assert_resolved "$OP"
EVENTS=$(curl -s --max-time 10 --unix-socket "$SOCK" "http://ved/v1/events?since=0&follow=0")
assert_match "$(jq -r --argjson op "$OP" 'select(.operation == $op) | .type' <<<"$EVENTS" | sort -u | tr '\n' ' ')" \
        'operation.(failed|succeeded) operation.resolved' "the interrupted import's events: its end too"
assert_eq "$(jq -r 'select(.type == "daemon.started") | .type' <<<"$EVENTS" | tail -1)" \
        daemon.started "the restarted daemon's daemon.started event"
api GET /v1/templates/crashed
if [ "$STATUS" = 200 ]; then
        check "a listed template has its image" test -s "$STATE_DIR/templates/crashed.img"
else
        assert_error 404
        check "no image of an unlisted template" test ! -e "$STATE_DIR/templates/crashed.img"
fi
assert_consistent

begin_case "kill -9 of ved in the middle of a template's upload: the partial upload is removed"
head -c $((64 << 20)) /dev/zero >"$T/big.tar"
curl -s --max-time 60 --limit-rate 4M --unix-socket "$SOCK" -X POST \
        -H 'Content-Type: application/x-tar' --data-binary "@$T/big.tar" \
        "http://ved/v1/templates?name=halfway" >/dev/null 2>&1 &
UPLOAD_PID=$!
bg_track "$UPLOAD_PID"
for _ in $(seq 50); do
        compgen -G "$STATE_DIR/templates/.upload-*" >/dev/null && break
        sleep 0.1
done
check "the upload is being written" compgen -G "$STATE_DIR/templates/.upload-*"
ved_kill9
wait "$UPLOAD_PID" 2>/dev/null
check "the partial upload is still there while ved is down" \
        compgen -G "$STATE_DIR/templates/.upload-*"
ved_start || fail "the daemon starts again"
check "no upload left after the restart" bash -c "! compgen -G '$STATE_DIR/templates/.upload-*'"
api GET /v1/templates/halfway
assert_error 404
rm -f "$T/big.tar"
assert_consistent

# --- a layered VE (ve/layer.h) ---------------------------------------------

begin_case "crash at create:private of a layered VE: the half-created VE is removed"
crash_daemon create:private || fail "ved starts with the hook"
request_op POST /v1/ves "{\"ctid\":105,\"ostemplate\":\"$TEMPLATE\",\"layout\":\"layered\"}"
assert_ne "$OP" "" "create 105 accepted"
expect_crash_and_restart create:private
assert_resolved "$OP"
assert_ve_gone 105
assert_consistent

begin_case "setup: layered VE 104 created (stopped)"
check "create 104" run_op POST /v1/ves \
        "{\"ctid\":104,\"ostemplate\":\"$TEMPLATE\",\"layout\":\"layered\",\"hostname\":\"c104\"}"

# config mounts the layers' overlay on ves/104/root for the guest's files, init
# makes the VE's own overlay and the host's view of it.
for step in mount config init; do
        begin_case "crash at start:$step of layered VE 104: really running or really stopped"
        bring_to 104 stopped || fail "VE 104 stopped before the crash"
        crash_daemon "start:$step" || fail "ved starts with the hook"
        request_op POST /v1/ves/104/state '{"action":"start"}'
        assert_ne "$OP" "" "start 104 accepted"
        expect_crash_and_restart "start:$step"
        assert_resolved "$OP"
        echo "   (VE 104 is $(ve_state 104) after the recovery)"
        assert_match "$(ve_state 104)" '^(running|stopped)$' "VE 104's state"
        assert_consistent
        check "start 104" bring_to 104 running
        check "exec in 104" exec_works 104
        assert_eq "$(findmnt -n -o FSTYPE "$STATE_DIR/ves/104/root")" overlay "the host's view of 104"
done

begin_case "crash at destroy:private of running layered VE 104 (force): the VE is gone"
crash_daemon destroy:private || fail "ved starts with the hook"
check "start 104" bring_to 104 running
request_op DELETE '/v1/ves/104?force=true'
assert_ne "$OP" "" "destroy 104 accepted"
expect_crash_and_restart destroy:private
assert_resolved "$OP"
assert_ve_gone 104
assert_consistent

# A user's kill -9 hits no chosen step: vectl commands on three VEs at once, the
# daemon killed 0-39 ms later, ROUNDS times. After each restart every VE is really
# what the daemon says and nothing is orphaned; over the rounds, some kills must
# have landed inside an operation (it got a resolution), or the case proved nothing.
ROUNDS=${CHAOS_ROUNDS:-25}
no_running_ops()
{
        [ "$(db_count operations "status in ('running', 'pending')")" = 0 ]
}
begin_case "kill -9 at random moments of concurrent create/start/stop/restart/destroy ($ROUNDS rounds)"
RESOLVED0=$(db_count operations "resolution is not null")
for round in $(seq "$ROUNDS"); do
        pids=()
        for ctid in 111 112 113; do
                state=$(ve_state "$ctid")
                case $state:$((RANDOM % 3)) in
                running:0) args=(stop "$ctid") ;;
                running:1) args=(restart "$ctid") ;;
                running:2) args=(destroy "$ctid" --force) ;;
                stopped:0) args=(destroy "$ctid") ;;
                stopped:*) args=(start "$ctid") ;;
                *) args=(create "$ctid" --ostemplate "$TEMPLATE") ;;
                esac
                vectl "${args[@]}" >/dev/null 2>&1 &
                pids+=($!)
        done
        sleep "0.0$((RANDOM % 4))$((RANDOM % 10))"
        ved_kill9
        ved_start || { fail "ved starts again in round $round"; break; }
        # (A vectl that was waiting for its operation waits for ved to come back.)
        wait "${pids[@]}" 2>/dev/null
        wait_until 30 no_running_ops ||
                fail "round $round: operations still running after 30 s"
        assert_consistent
        [ "$CASE_FAILED" = 0 ] || { echo "   (after round $round: ${args[*]} and others)"; break; }
done
RESOLVED=$(($(db_count operations "resolution is not null") - RESOLVED0))
echo "   ($RESOLVED operations cut by the kills were resolved at restart)"
check "some kills landed inside an operation" test "$RESOLVED" -gt 0
for ctid in 111 112 113; do
        [ -n "$(ve_state "$ctid")" ] && run_op DELETE "/v1/ves/$ctid?force=true"
done
api GET /v1/ves
assert_json '[.ves[].ctid] | map(select(. >= 111 and . <= 113)) | length' 0 "VEs 111-113 destroyed"

begin_case "at the end: a VE can still be created, started and destroyed; nothing left"
check "create 103" run_op POST /v1/ves "{\"ctid\":103,\"ostemplate\":\"$TEMPLATE\"}"
check "start 103" bring_to 103 running
check "exec in 103" exec_works 103
check "destroy 103" run_op DELETE '/v1/ves/103?force=true'
api GET /v1/ves
assert_json '.ves | length' 0
assert_eq "$(host_leftovers)" "" "what the host holds of this instance"
assert_eq "$(template_leftovers)" "" "staging, upload or temporary image files in templates/"

finish
