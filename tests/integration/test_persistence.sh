#!/usr/bin/env bash
# What the daemon knows survives it: records across a SIGTERM restart and a kill -9,
# unfinished operations resolved at startup (with the VED_TEST_CRASH_AT hook of
# daemon/ops.c), one winner among concurrent creates of one CTID, and a database
# from a newer ved refused with both versions named. Needs no root.
#
#   bash tests/integration/test_persistence.sh    (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"


# create_ve JSON: POST /v1/ves and wait for the operation; prints its final status.
create_ve()
{
        api POST /v1/ves "$1"
        [ "$STATUS" = 202 ] || { echo "create answered $STATUS: $BODY" >&2; return 1; }
        wait_op "$(op_id_from_location)" 20
        echo "$OP_STATUS"
}

ves_snapshot()
{
        api GET /v1/ves
        jqb '.ves' | jq -S .
}

ved_start || { fail "the daemon starts"; finish; }
ensure_template || { fail "the template $TEMPLATE is there"; finish; }

begin_case "create 3 VEs"
assert_eq "$(create_ve "{\"ctid\":101,\"ostemplate\":\"$TEMPLATE\"}")" succeeded "create 101"
assert_eq "$(create_ve "{\"ctid\":102,\"ostemplate\":\"$TEMPLATE\",\"name\":\"db\",
        \"hostname\":\"db.example.com\",\"ram\":\"1G\"}")" succeeded "create 102"
assert_eq "$(create_ve "{\"ctid\":103,\"ostemplate\":\"$TEMPLATE\",\"name\":\"web\",
        \"hostname\":\"web.example.com\",\"ip\":[\"192.0.2.3\",\"2001:db8::3\"],
        \"nameserver\":[\"192.0.2.53\"],\"searchdomain\":[\"example.com\"],\"onboot\":true,
        \"ram\":\"512M\",\"swap\":\"256M\",\"cpus\":2,\"cpulimit\":\"150%\",\"cpuunits\":500,
        \"numproc\":300,\"diskspace\":\"3G\",\"diskinodes\":100000,\"iolimit\":\"10M\",
        \"iopslimit\":500,\"rate\":100,\"stop_timeout\":30,\"init\":\"/bin/init\",
        \"description\":\"all the fields\"}")" succeeded "create 103"
check "VE 101 has its directory under ves/ (so the absence checks below mean something)" \
        test -d "$STATE_DIR/ves/101"
api PATCH /v1/ves/102 '{"description":"patched before the restarts"}'
assert_status 200
BEFORE=$(ves_snapshot)
assert_eq "$(jq length <<<"$BEFORE")" 3 "VEs"
api GET /v1/operations
OPS_BEFORE=$(jqb '.operations' | jq -S -c .)

begin_case "records survive a SIGTERM restart, field for field"
ved_stop
assert_eq "$VED_EXIT" 0 "exit status after SIGTERM"
ved_start || fail "the daemon starts again"
assert_eq "$(ves_snapshot)" "$BEFORE" "GET /v1/ves after the restart"
api GET /v1/operations
assert_eq "$(jqb '.operations' | jq -S -c '[.[] | select(.id <= '"$(jq '.[0].id' <<<"$OPS_BEFORE")"')]')" \
        "$OPS_BEFORE" "operations after the restart"

begin_case "a change acknowledged just before a kill -9 survives it"
api PATCH /v1/ves/101 '{"ram":"2G","name":"last"}'
assert_status 200
BEFORE=$(ves_snapshot)
ved_kill9
ved_start || fail "the daemon starts after kill -9"
assert_eq "$(ves_snapshot)" "$BEFORE" "GET /v1/ves after kill -9"
api GET /v1/ves/last
assert_json .ram 2147483648

begin_case "a second kill -9 right after startup loses nothing either"
ved_kill9
ved_start || fail "the daemon starts after the second kill -9"
assert_eq "$(ves_snapshot)" "$BEFORE" "GET /v1/ves after the second kill -9"

begin_case "event ids keep growing across restarts"
curl -s --max-time 10 --unix-socket "$SOCK" 'http://ved/v1/events?follow=0' >"$T/ev.ndjson"
assert_eq "$(jq -r .id "$T/ev.ndjson" | sort -n -c 2>&1 && echo sorted)" sorted "event ids ascend"
assert_eq "$(jq -r .id "$T/ev.ndjson" | sort -n | uniq -d | wc -l)" 0 "duplicate event ids"

# --- unfinished operations -------------------------------------------------------

begin_case "create interrupted mid-operation (VED_TEST_CRASH_AT=create:private) is rolled back"
ved_stop
VED_TEST_CRASH_AT=create:private ved_start || fail "the daemon starts with the crash hook"
api POST /v1/ves "{\"ctid\":104,\"ostemplate\":\"$TEMPLATE\",\"name\":\"crashy\"}"
OPID=$(op_id_from_location)
check "the daemon exits at the hook" ved_wait_exit 15
assert_eq "${VED_EXIT:-}" 137 "exit status at the hook"
[ -z "$OPID" ] && OPID=$(sqlite3 "$STATE_DIR/ved.db" \
        "select max(id) from operations where type='create' and ctid=104")
check "an operation id for the interrupted create" test -n "$OPID"
assert_eq "$(sqlite3 "$STATE_DIR/ved.db" "select status from operations where id=$OPID")" \
        running "the interrupted operation's status on disk"
ved_start || fail "the daemon starts after the crash"
api GET "/v1/operations/$OPID"
assert_status 200
assert_json .status failed
assert_json '.resolution | type == "string" and length > 0' true "resolution is set"
assert_json '.finished_at != null' true
api GET /v1/ves/104
assert_error 404
api GET /v1/ves/crashy
assert_error 404
check "no directory left for VE 104" test ! -e "$STATE_DIR/ves/104"
assert_eq "$(ves_snapshot)" "$BEFORE" "the other VEs"
curl -s --max-time 10 --unix-socket "$SOCK" 'http://ved/v1/events?follow=0' >"$T/ev.ndjson"
assert_eq "$(jq -c "select(.type == \"operation.resolved\" and .operation == $OPID) | .ctid" \
        "$T/ev.ndjson")" 104 "operation.resolved event"
api GET '/v1/operations?status=running'
assert_json '.operations | length' 0 "operations still running"

begin_case "destroy interrupted mid-operation (VED_TEST_CRASH_AT=destroy:private) is rolled forward"
ved_stop
VED_TEST_CRASH_AT=destroy:private ved_start || fail "the daemon starts with the crash hook"
api DELETE /v1/ves/101
OPID=$(op_id_from_location)
check "the daemon exits at the hook" ved_wait_exit 15
assert_eq "${VED_EXIT:-}" 137 "exit status at the hook"
[ -z "$OPID" ] && OPID=$(sqlite3 "$STATE_DIR/ved.db" \
        "select max(id) from operations where type='destroy' and ctid=101")
ved_start || fail "the daemon starts after the crash"
api GET "/v1/operations/$OPID"
assert_json .status succeeded
assert_json '.resolution | type == "string" and length > 0' true "resolution is set"
api GET /v1/ves/101
assert_error 404
check "no directory left for VE 101" test ! -e "$STATE_DIR/ves/101"
api GET /v1/ves
assert_json '[.ves[].ctid] | join(",")' "102,103"

begin_case "template import interrupted mid-operation (template-import:import) is resolved"
api GET /v1/templates
if [ "$STATUS" != 200 ]; then
        echo "   (not checked: /v1/templates is not served yet)"
else
        "$REPO/templates/$TEMPLATE/build" "$T/copy.tar.gz" >"$T/copy-build.log" 2>&1
        check "the template recipe builds a tarball" test -s "$T/copy.tar.gz"
        ved_stop
        VED_TEST_CRASH_AT=template-import:import ved_start ||
                fail "the daemon starts with the crash hook"
        api --ct application/octet-stream POST /v1/templates?name=crashcopy "@$T/copy.tar.gz"
        OPID=$(op_id_from_location)
        check "the daemon exits at the hook" ved_wait_exit 120
        assert_eq "${VED_EXIT:-}" 137 "exit status at the hook"
        [ -z "$OPID" ] && OPID=$(sqlite3 "$STATE_DIR/ved.db" \
                "select max(id) from operations where type='template-import'")
        ved_start || fail "the daemon starts after the crash"
        api GET "/v1/operations/$OPID"
        assert_json '.status | IN("succeeded", "failed")' true "operation resolved"
        assert_json '.resolution | type == "string" and length > 0' true "resolution is set"
        OPST=$(jqb .status)
        api GET /v1/templates/crashcopy
        if [ "$OPST" = succeeded ]; then
                assert_status 200
        else
                assert_error 404
        fi
        left=$(find "$STATE_DIR/templates" -maxdepth 1 -name '.*' ! -name . | tr '\n' ' ')
        assert_eq "$left" "" "staging or upload files left in templates/"
fi

# --- concurrency ---------------------------------------------------------------------

begin_case "20 concurrent creates of CTID 110: one 202, nineteen 409, one record"
mkdir -p "$T/race"
pids=()
for i in $(seq 1 20); do
        curl -s --max-time 30 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
                --data-binary "{\"ctid\":110,\"ostemplate\":\"$TEMPLATE\"}" \
                -o "$T/race/$i.body" -w '%{http_code}' http://ved/v1/ves >"$T/race/$i.code" &
        pids+=($!)
        bg_track $!
done
wait "${pids[@]}"
codes=$(cat "$T"/race/*.code | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
assert_eq "$(grep -lx 202 "$T"/race/*.code | wc -l)" 1 "202 answers ($codes)"
assert_eq "$(grep -lx 409 "$T"/race/*.code | wc -l)" 19 "409 answers ($codes)"
for f in $(grep -lx 409 "$T"/race/*.code); do
        jq -e '.error.code == 409 and (.error.message | test("110"))' "${f%.code}.body" \
                >/dev/null 2>&1 || fail "409 body names CTID 110: $(cat "${f%.code}.body")"
done
assert_eq "$(db_count ves 'ctid = 110')" 1 "rows for CTID 110"
assert_eq "$(db_count operations "type = 'create' and ctid = 110")" 1 "create operations of 110"
api GET '/v1/operations?ctid=110'
OPID=$(jqb '.operations[0].id')
wait_op "$OPID" 20
assert_eq "$OP_STATUS" succeeded "the winning create"

begin_case "20 concurrent creates of one name (CTIDs 301-320): one 202, nineteen 409"
pids=()
for i in $(seq 1 20); do
        curl -s --max-time 30 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
                --data-binary "{\"ctid\":$((300 + i)),\"ostemplate\":\"$TEMPLATE\",\"name\":\"racer\"}" \
                -o /dev/null -w '%{http_code}' http://ved/v1/ves >"$T/race/n$i.code" &
        pids+=($!)
        bg_track $!
done
wait "${pids[@]}"
codes=$(cat "$T"/race/n*.code | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
assert_eq "$(grep -lx 202 "$T"/race/n*.code | wc -l)" 1 "202 answers ($codes)"
assert_eq "$(grep -lx 409 "$T"/race/n*.code | wc -l)" 19 "409 answers ($codes)"
assert_eq "$(db_count ves "name = 'racer'")" 1 "rows named racer"
assert_eq "$(db_count ves 'ctid > 300 and ctid <= 320')" 1 "rows with CTIDs 301-320"
api GET /v1/ves/racer
assert_status 200
WINNER=$(jqb .ctid)
api GET "/v1/operations?ctid=$WINNER"
wait_op "$(jqb '.operations[0].id')" 20
assert_eq "$OP_STATUS" succeeded "the winning create"
api DELETE /v1/ves/racer
wait_op "$(op_id_from_location)" 20
assert_eq "$OP_STATUS" succeeded "destroy of racer"

begin_case "20 concurrent creates of different CTIDs all succeed"
pids=()
for i in $(seq 1 20); do
        curl -s --max-time 30 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
                --data-binary "{\"ctid\":$((200 + i)),\"ostemplate\":\"$TEMPLATE\"}" \
                -o /dev/null -w '%{http_code}' http://ved/v1/ves >"$T/race/m$i.code" &
        pids+=($!)
        bg_track $!
done
wait "${pids[@]}"
assert_eq "$(grep -lx 202 "$T"/race/m*.code | wc -l)" 20 "202 answers"
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
        api GET '/v1/operations?status=running'
        [ "$(jqb '.operations | length')" = 0 ] && break
        sleep 0.2
done
api GET '/v1/ves?state=stopped'
assert_eq "$(jqb '[.ves[].ctid | select(. > 200 and . <= 220)] | length')" 20 "stopped VEs 201-220"

# --- schema versions ------------------------------------------------------------------

begin_case "a database from a newer ved is refused, naming both versions"
ved_stop
KNOWN=$(sqlite3 "$STATE_DIR/ved.db" 'PRAGMA user_version')
check "the database has a schema version" test "${KNOWN:-0}" -ge 1
NEWER=$((KNOWN + 7))
cp -a "$STATE_DIR" "$T/state-newer"
sqlite3 "$T/state-newer/ved.db" "PRAGMA user_version = $NEWER"
SAVED_STATE_DIR=$STATE_DIR
STATE_DIR=$T/state-newer
ved_start_expect_fail
STATE_DIR=$SAVED_STATE_DIR
assert_ne "$VED_EXIT" 0 "exit status"
assert_ne "$VED_EXIT" 999 "the daemon exits instead of serving"
assert_match "$VED_OUTPUT" "(^|[^0-9])$NEWER([^0-9]|$)" "message names the database's version"
assert_match "$VED_OUTPUT" "(^|[^0-9])$KNOWN([^0-9]|$)" "message names the known version"
assert_eq "$(sqlite3 "$T/state-newer/ved.db" 'PRAGMA user_version')" "$NEWER" \
        "the newer database is left as it was"
check "no socket left behind" test ! -e "$SOCK"

begin_case "the original state still starts and holds everything"
ved_start || fail "the daemon starts on the original state"
api GET /v1/ves
assert_json '.ves | length' 23
api GET /v1/ves/103
assert_json .description "all the fields"
assert_json .cpulimit 150
assert_json .iolimit 10485760

begin_case "a second daemon on the same state directory, or of the same instance, is refused"
ved_start_expect_fail --socket "$T/second.sock" --instance "v2nd$(($$ % 10000))"
assert_eq "$VED_EXIT" 1 "same state directory: exit status"
assert_match "$VED_OUTPUT" "another ved \\(pid $VED_PID\\) is running with this state directory" \
        "its message"
mkdir -p "$T/state-second"
SAVED_STATE_DIR=$STATE_DIR
STATE_DIR=$T/state-second
ved_start_expect_fail --socket "$T/second.sock"
STATE_DIR=$SAVED_STATE_DIR
assert_eq "$VED_EXIT" 1 "same instance: exit status"
assert_match "$VED_OUTPUT" "another ved \\(pid $VED_PID\\) is running with instance '$INSTANCE'" \
        "its message"
check "no socket of theirs" test ! -e "$T/second.sock"
check "the second state directory got no database" test ! -e "$T/state-second/ved.db"
api GET /v1/ves
assert_json '.ves | length' 23
ved_stop
assert_eq "$VED_EXIT" 0 "exit status after SIGTERM"

finish
