#!/usr/bin/env bash
# The REST API's everyday paths against a real daemon: host, create, list with
# filters, show with ETag, PATCH with and without If-Match, destroy, operations and
# their steps, the event stream; then the same through vectl. Needs no root.
#
#   bash tests/integration/test_api_basic.sh      (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# Every line of an event capture, one JSON object each; prints the types.
event_types()
{
        jq -r '.type' "$1" 2>/dev/null
}

ved_start || { fail "the daemon starts"; finish; }
ensure_template || { fail "the template $TEMPLATE is there"; finish; }

# Follow the event stream from before anything happens.
curl -s -N --unix-socket "$SOCK" http://ved/v1/events >"$T/events.ndjson" 2>/dev/null &
bg_track $!
sleep 0.3

begin_case "GET /v1/host describes this daemon"
api GET /v1/host
assert_status 200
assert_match "$(header Content-Type)" '^application/json' "Content-Type"
assert_json .instance "$INSTANCE"
assert_json .socket "$SOCK"
assert_json '.state_dir | endswith("/state")' true
assert_json '.ves.total' 0
assert_json '.ves.running' 0
assert_json '.pid > 1' true
assert_json '.cgroup | IN("v1", "v2")' true
assert_json '.version | length > 0' true

begin_case "POST /v1/ves creates VE 101: 202, Location, operation and VE in the body"
api POST /v1/ves "{\"ctid\":101,\"ostemplate\":\"$TEMPLATE\",\"name\":\"web1\",
        \"hostname\":\"web1.example.com\",\"ip\":[\"192.0.2.10\",\"2001:0db8::0010\"],
        \"ram\":\"512M\",\"diskspace\":\"1G\",\"numproc\":\"200\",\"cpulimit\":\"50%\",
        \"description\":\"first VE\"}"
assert_status 202
assert_header Location '^/v1/operations/[0-9]+$'
OP1=$(op_id_from_location)
assert_json .operation.id "$OP1"
assert_json .operation.type create
assert_json .operation.ctid 101
assert_json .ve.ctid 101
assert_json .ve.name web1
assert_json .ve.ram 536870912
assert_json .ve.diskspace 1073741824
assert_json .ve.numproc 200
assert_json .ve.cpulimit 50
assert_json '.ve.ip | join(",")' "192.0.2.10,2001:db8::10"
assert_json .ve.stop_timeout 120
assert_json .ve.init /sbin/init

begin_case "GET /v1/operations/{id}?wait=10 waits for the create to succeed"
wait_op "$OP1" 10
assert_eq "$OP_STATUS" succeeded "operation $OP1 status"
assert_json .id "$OP1"
assert_json .error null
assert_json '.finished_at != null' true
assert_json '.steps | length >= 1' true
assert_json '[.steps[] | (.name | type == "string" and length > 0) and (.at | test("Z$"))] | all' true
assert_json '[.steps[].at] == ([.steps[].at] | sort)' true "steps in order"

begin_case "GET /v1/ves/101 shows the VE stopped, with an ETag of its version"
api GET /v1/ves/101
assert_status 200
assert_json .state stopped
assert_json .hostname web1.example.com
assert_json .description "first VE"
V=$(jqb .version)
assert_eq "$(header ETag)" "\"$V\"" ETag

begin_case "HEAD /v1/ves/101: the GET's status and ETag, no body"
OUT=$(curl -s -I --max-time 5 --unix-socket "$SOCK" http://ved/v1/ves/101 | tr -d '\r')
assert_match "$OUT" '^HTTP/1.1 200' "status line"
assert_match "$OUT" "ETag: \"$V\"" "ETag"
OUT=$(curl -s -I -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$SOCK" \
        http://ved/v1/ves/999)
assert_eq "$OUT" 404 "HEAD of a missing VE"

begin_case "GET /v1/ves/web1 finds the VE by name"
api GET /v1/ves/web1
assert_status 200
assert_json .ctid 101

begin_case "create VE 102 (db1) and wait for it"
api POST /v1/ves "{\"ctid\":102,\"ostemplate\":\"$TEMPLATE\",\"name\":\"db1\",\"ram\":1073741824}"
assert_status 202
OP2=$(op_id_from_location)
wait_op "$OP2" 10
assert_eq "$OP_STATUS" succeeded "operation $OP2 status"

begin_case "GET /v1/ves lists both, by CTID"
api GET /v1/ves
assert_status 200
assert_json '[.ves[].ctid] | join(",")' "101,102"

begin_case "GET /v1/ves?state=stopped and ?state=running filter by state"
api GET '/v1/ves?state=stopped'
assert_status 200
assert_json '.ves | length' 2
api GET '/v1/ves?state=running'
assert_status 200
assert_json '.ves | length' 0

begin_case "GET /v1/ves?name= filters by name"
api GET '/v1/ves?name=db1'
assert_status 200
assert_json '[.ves[].ctid] | join(",")' 102
api GET '/v1/ves?name=nosuch'
assert_status 200
assert_json '.ves | length' 0
api GET '/v1/ves?state=stopped&name=web1'
assert_status 200
assert_json '[.ves[].ctid] | join(",")' 101

begin_case "PATCH with If-Match of the current ETag: 200 and a new ETag"
api GET /v1/ves/101
ETAG1=$(header ETag)
V1=$(jqb .version)
api -H "If-Match: $ETAG1" PATCH /v1/ves/101 '{"ram":"1G","description":"changed"}'
assert_status 200
assert_json .ram 1073741824
assert_json .description changed
assert_json .version $((V1 + 1))
ETAG2=$(header ETag)
assert_eq "$ETAG2" "\"$((V1 + 1))\"" "new ETag"
assert_ne "$ETAG2" "$ETAG1" "new ETag"

begin_case "PATCH with a stale If-Match: 412 and the record unchanged"
api GET /v1/ves/101
BEFORE=$BODY
api -H "If-Match: $ETAG1" PATCH /v1/ves/101 '{"ram":"2G","description":"lost update"}'
assert_error 412
api GET /v1/ves/101
assert_eq "$BODY" "$BEFORE" "the VE after a refused PATCH"
assert_json .ram 1073741824
assert_eq "$(header ETag)" "$ETAG2" ETag

begin_case "PATCH without If-Match: 200 and the version bumps"
api PATCH /v1/ves/101 '{"hostname":"web2.example.com"}'
assert_status 200
assert_json .hostname web2.example.com
assert_json .version $((V1 + 2))
assert_eq "$(header ETag)" "\"$((V1 + 2))\"" ETag

begin_case "PATCH with If-Match: * applies"
api -H 'If-Match: *' PATCH /v1/ves/101 '{"numproc":300}'
assert_status 200
assert_json .numproc 300

begin_case "PATCH null resets a parameter; ipadd and ipdel change addresses"
api PATCH /v1/ves/101 '{"description":null,"ram":null,"ipadd":["192.0.2.11"]}'
assert_status 200
assert_json .description null
assert_json .ram null
assert_json '.ip | join(",")' "192.0.2.10,2001:db8::10,192.0.2.11"
api PATCH /v1/ves/101 '{"ipdel":["2001:db8::10"]}'
assert_status 200
assert_json '.ip | join(",")' "192.0.2.10,192.0.2.11"
# One entry per address: a prefix given later replaces the bare one, and ipdel of
# the bare address removes the entry with its prefix.
api PATCH /v1/ves/101 '{"ipadd":["192.0.2.11/24"]}'
assert_status 200
assert_json '.ip | join(",")' "192.0.2.10,192.0.2.11/24"
api PATCH /v1/ves/101 '{"ipdel":["192.0.2.11"]}'
assert_status 200
assert_json '.ip | join(",")' "192.0.2.10"
api PATCH /v1/ves/101 '{"ipdel":["192.0.2.10/24"]}'
assert_error 400
assert_json .error.message "ipdel: the VE has no address 192.0.2.10/24"
api PATCH /v1/ves/web1 '{"ipdel":["all"]}'
assert_status 200
assert_json '.ip | length' 0

begin_case "sizes and counts in every accepted form"
api PATCH /v1/ves/101 '{"ram":"1.5G","swap":"512m","iolimit":"1MiB","diskspace":"3GB"}'
assert_status 200
assert_json .ram 1610612736
assert_json .swap 536870912
assert_json .iolimit 1048576
assert_json .diskspace 3221225472
api PATCH /v1/ves/101 '{"ram":268435456,"cpus":"2","cpulimit":150,"stop_timeout":"60"}'
assert_status 200
assert_json .ram 268435456
assert_json .cpus 2
assert_json .cpulimit 150
assert_json .stop_timeout 60

begin_case "Content-Type with parameters or in other case is accepted"
api --ct 'application/json; charset=utf-8' PATCH /v1/ves/101 '{"numproc":400}'
assert_status 200
assert_json .numproc 400
api --ct 'Application/JSON' PATCH /v1/ves/101 '{"numproc":401}'
assert_status 200
assert_json .numproc 401

begin_case "PATCH of the name: found under the new name only"
api PATCH /v1/ves/101 '{"name":"www"}'
assert_status 200
assert_json .name www
api GET /v1/ves/www
assert_status 200
assert_json .ctid 101
api GET /v1/ves/web1
assert_error 404

begin_case "GET /v1/ves/101/state reports the runtime state"
api GET /v1/ves/101/state
assert_status 200
assert_json .ctid 101
assert_json .state stopped
assert_json .exist true
assert_json .running false
assert_json .pid null

begin_case "GET /v1/operations lists operations newest first"
api GET /v1/operations
assert_status 200
assert_json '[.operations[].id] == ([.operations[].id] | sort | reverse)' true "newest first"
assert_json "[.operations[].id] | index($OP1) != null" true "the create of 101 is listed"
assert_json "[.operations[].id] | index($OP2) != null" true "the create of 102 is listed"
assert_json '[.operations[] | .steps | type == "array"] | all' true

begin_case "GET /v1/operations?ctid=102, ?status=succeeded and ?limit=1"
api GET '/v1/operations?ctid=102'
assert_status 200
assert_json '[.operations[].ctid] | unique | join(",")' 102
assert_json "[.operations[].id] | index($OP2) != null" true
api GET '/v1/operations?status=succeeded'
assert_status 200
assert_json '[.operations[].status] | unique | join(",")' succeeded
api GET '/v1/operations?limit=1'
assert_status 200
assert_json '.operations | length' 1

begin_case "each PATCH is recorded as a succeeded operation on the VE"
api GET '/v1/operations?ctid=101'
assert_status 200
assert_json '[.operations[] | select(.type != "create")] | length >= 11' true \
        "operations on 101 besides its create (11 PATCHes were applied)"
assert_json '[.operations[] | select(.type != "create") | .status == "succeeded"] | all' true
assert_json '[.operations[] | select(.type == "create")] | length' 1

begin_case "DELETE /v1/ves/102: 202 with Location, then the VE is gone (404)"
api DELETE /v1/ves/102
assert_status 202
assert_header Location '^/v1/operations/[0-9]+$'
OP3=$(op_id_from_location)
assert_json .operation.id "$OP3"
assert_json .operation.type destroy
wait_op "$OP3" 10
assert_eq "$OP_STATUS" succeeded "destroy operation status"
assert_json '.steps | length >= 1' true
api GET /v1/ves/102
assert_error 404
api GET /v1/ves/db1
assert_error 404
api DELETE /v1/ves/102
assert_error 404

begin_case "GET /v1/host counts the VEs"
api GET /v1/host
assert_json .ves.total 1

# --- the same through vectl ---------------------------------------------------

begin_case "vectl create 103 --ostemplate --hostname --ram"
out=$(vectl create 103 --ostemplate "$TEMPLATE" --hostname a.example.com --ram 512M 2>&1)
assert_eq "$?" 0 "vectl create exit status ($out)"
api GET /v1/ves/103
assert_status 200
assert_json .state stopped
assert_json .hostname a.example.com
assert_json .ram 536870912

begin_case "vectl create of an existing CTID fails with the conflict exit code (5)"
out=$(vectl create 103 --ostemplate "$TEMPLATE" 2>&1)
assert_eq "$?" 5 "vectl exit status ($out)"
assert_match "$out" '103' "the message names the CTID"

begin_case "vectl set 103 --ram 1G --name web3"
out=$(vectl set 103 --ram 1G --name web3 --save 2>&1)
assert_eq "$?" 0 "vectl set exit status ($out)"
api GET /v1/ves/web3
assert_status 200
assert_json .ctid 103
assert_json .ram 1073741824

begin_case "vectl list -a, -S, -N, -o, -H, -j"
out=$(vectl list -a -H -o ctid,hostname 2>&1)
assert_eq "$?" 0 "vectl list exit status ($out)"
assert_match "$out" '(^|[[:space:]])103[[:space:]]+a\.example\.com' "vectl list -a shows VE 103"
assert_match "$out" '(^|[[:space:]])101[[:space:]]' "vectl list -a shows VE 101"
assert_eq "$(grep -ci ctid <<<"$out")" 0 "no header with -H"
out=$(vectl list 2>&1)
assert_eq "$?" 0 "vectl list exit status"
assert_eq "$(grep -c '103' <<<"$out")" 0 "vectl list (running only) does not show stopped 103"
out=$(vectl list -S -j 2>&1)
assert_eq "$(jq -r '[.[].ctid] | sort | join(",")' <<<"$out" 2>&1)" "101,103" "vectl list -S -j"
out=$(vectl list -N web3 -j 2>&1)
assert_eq "$(jq -r '[.[].ctid] | join(",")' <<<"$out" 2>&1)" 103 "vectl list -N web3 -j"

begin_case "vectl op list and op show"
out=$(vectl op list 2>&1)
assert_eq "$?" 0 "vectl op list exit status ($out)"
assert_match "$out" 'create' "vectl op list shows creates"
out=$(vectl op show "$OP1" -j 2>&1)
assert_eq "$?" 0 "vectl op show exit status ($out)"
assert_eq "$(jq -r .status <<<"$out" 2>&1)" succeeded "vectl op show -j"

begin_case "vectl status 103"
out=$(vectl status 103 2>&1)
assert_eq "$?" 0 "vectl status exit status ($out)"
assert_match "$out" 'exist' "status output"

begin_case "vectl status of a missing VE exits 4 (not found)"
out=$(vectl status 999 2>&1)
rc=$?
if [[ $out =~ deleted|not\ exist|does\ not ]] && [ "$rc" = 0 ]; then
        pass # vzctl's habit: "CTID 999 deleted unmounted down", exit 0
else
        assert_eq "$rc" 4 "vectl status exit status ($out)"
fi

begin_case "vectl destroy 103"
out=$(vectl destroy web3 2>&1)
assert_eq "$?" 0 "vectl destroy exit status ($out)"
api GET /v1/ves/103
assert_error 404

begin_case "vectl destroy of a missing VE exits 4"
out=$(vectl destroy 103 2>&1)
assert_eq "$?" 4 "vectl destroy exit status ($out)"

# --- events -------------------------------------------------------------------

begin_case "the event stream carried the lifecycle and the operations"
sleep 0.5
kill "${BG_PIDS[0]}" 2>/dev/null
wait "${BG_PIDS[0]}" 2>/dev/null
n=$(grep -c . "$T/events.ndjson")
bad=$(grep . "$T/events.ndjson" | while IFS= read -r line; do
        jq -e 'type == "object" and (.id | type) == "number" and (.type | type) == "string"' \
                <<<"$line" >/dev/null 2>&1 || echo x; done | grep -c x)
assert_eq "$bad" 0 "event lines that are not event objects (of $n)"
types=$(event_types "$T/events.ndjson" | sort -u | tr '\n' ' ')
for t in ve.created ve.destroyed operation.started operation.succeeded; do
        assert_match "$types" "(^| )$t( |$)" "event types seen"
done
assert_eq "$(jq -c 'select(.type == "ve.created") | .ctid' "$T/events.ndjson" | sort -u |
        tr '\n' ,)" "101,102,103," "ve.created CTIDs"
assert_eq "$(jq -c 'select(.type == "ve.destroyed") | .ctid' "$T/events.ndjson" | sort -u |
        tr '\n' ,)" "102,103," "ve.destroyed CTIDs"
assert_eq "$(jq -c "select(.type == \"operation.succeeded\" and .operation == $OP1) | .ctid" \
        "$T/events.ndjson")" 101 "operation.succeeded of the first create"
assert_eq "$(jq -r .id "$T/events.ndjson" | sort -n -c 2>&1 && echo sorted)" sorted "event ids ascend"
# A PATCH is an operation like the others: started, succeeded, and the change
# names it.
SETOP=$(jq -r 'select(.type == "ve.changed" and .ctid == 101) | .operation' "$T/events.ndjson" |
        head -1)
assert_match "$SETOP" '^[0-9]+$' "ve.changed names its operation"
assert_eq "$(jq -r "select(.operation == ${SETOP:-0} and (.type | startswith(\"operation.\"))) | .type" \
        "$T/events.ndjson" | tr '\n' ' ')" "operation.started operation.succeeded " \
        "the set operation's events"

begin_case "GET /v1/events?follow=0 is NDJSON of the past events and ends"
curl -s --max-time 10 -D "$T/ev.h" --unix-socket "$SOCK" 'http://ved/v1/events?follow=0' \
        >"$T/events-past.ndjson"
assert_eq "$?" 0 "curl ends by itself"
assert_match "$(tr -d '\r' <"$T/ev.h" | grep -i '^content-type:')" 'application/x-ndjson' \
        "Content-Type"
assert_match "$(event_types "$T/events-past.ndjson" | tr '\n' ' ')" 've\.created' \
        "past events include ve.created"
last=$(jq -r .id "$T/events-past.ndjson" | tail -n 1)

begin_case "GET /v1/events?since=N&follow=0 gives only later events"
first=$(jq -r .id "$T/events-past.ndjson" | head -n 1)
curl -s --max-time 10 --unix-socket "$SOCK" "http://ved/v1/events?since=$first&follow=0" \
        >"$T/events-since.ndjson"
assert_eq "$(jq -r "select(.id <= $first) | .id" "$T/events-since.ndjson" | wc -l)" 0 \
        "events at or before since=$first"
assert_eq "$(jq -r .id "$T/events-since.ndjson" | tail -n 1)" "$last" "the last event"

begin_case "vectl events follows the stream"
if "$VECTL_BIN" --help 2>&1 | grep -qw events; then
        vectl events >"$T/vectl-events.out" 2>&1 &
        VPID=$!
        bg_track $VPID
        sleep 0.5
        api POST /v1/ves "{\"ctid\":104,\"ostemplate\":\"$TEMPLATE\"}"
        wait_op "$(op_id_from_location)" 10
        api DELETE /v1/ves/104
        wait_op "$(op_id_from_location)" 10
        sleep 0.5
        kill "$VPID" 2>/dev/null
        assert_match "$(cat "$T/vectl-events.out")" 've\.created' "vectl events output"
        assert_match "$(cat "$T/vectl-events.out")" 'operation\.succeeded' "vectl events output"
else
        echo "   (vectl has no events command yet)"
fi

begin_case "the daemon stops cleanly on SIGTERM"
ved_stop
assert_eq "$VED_EXIT" 0 "exit status after SIGTERM"
check "the socket is removed" test ! -e "$SOCK"

finish
