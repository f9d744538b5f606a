#!/usr/bin/env bash
# Many operations at once and hostile input: 20 VEs created, started, stopped and
# destroyed concurrently (vectl and curl in the background), after which the host
# holds nothing of them; then template tarballs built to escape the staging
# directory or to exhaust the disk ('..', absolute paths, symlink escapes, hardlink
# escapes, device nodes, a 20 GiB member): each import fails with a message that
# names the problem, writes nothing outside its staging directory, leaves no
# staging or upload file, and the template is not listed. Needs root.
#
#   bash tests/integration/test_concurrency.sh     (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=cc$(($$ % 100000))
N=20
FIRST=201
CTIDS=$(seq "$FIRST" $((FIRST + N - 1)))

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi
command -v python3 >/dev/null || { echo "tests need python3" >&2; exit 1; }

test_cleanup()
{
        ves_teardown_all
        rm -f /tmp/evil-"$INSTANCE"-*
}

# api_op_wait METHOD PATH [BODY]: in a background job: send the request, wait for
# its operation, exit 0 only if it succeeded (the reason on stderr otherwise).
api_op_wait()
{
        local out status id res

        out=$(curl -s --max-time 60 --unix-socket "$SOCK" -X "$1" -D - \
                -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
                -o /dev/null "http://ved$2" | tr -d '\r')
        id=$(sed -n 's#^[Ll]ocation: /v1/operations/\([0-9]*\)$#\1#p' <<<"$out")
        [ -n "$id" ] || { echo "$1 $2: no operation: $(head -n1 <<<"$out")" >&2; return 1; }
        res=$(curl -s --max-time 200 --unix-socket "$SOCK" \
                "http://ved/v1/operations/$id?wait=180")
        status=$(jq -r .status <<<"$res" 2>/dev/null)
        [ "$status" = succeeded ] || { echo "$1 $2: operation $id $status: $res" >&2; return 1; }
}

# run_all WHAT COMMAND-TEMPLATE: run one background job per CTID (@ in the words is
# replaced by the CTID), wait for each, and count the failures into FAILS. Prints
# the time it took.
run_all()
{
        local what=$1 ctid i t0=$SECONDS
        local -a pids=() cmd

        shift
        for ctid in $CTIDS; do
                cmd=()
                for i in "$@"; do
                        cmd+=("${i//@/$ctid}")
                done
                "${cmd[@]}" >"$T/$what.$ctid.out" 2>&1 &
                pids+=($!)
                bg_track $!
        done
        FAILS=0
        i=0
        for ctid in $CTIDS; do
                if ! wait "${pids[$i]}"; then
                        FAILS=$((FAILS + 1))
                        echo "   $what $ctid failed: $(tail -n 3 "$T/$what.$ctid.out")"
                fi
                i=$((i + 1))
        done
        echo "   ($N ${what}s took $((SECONDS - t0)) s)"
}

exec_hostname()
{
        api POST "/v1/ves/$1/exec" '{"command":["hostname"]}'
        [ "$(jqb .exit_code)" = 0 ] && [ "$(jqb .stdout)" = "ve$1" ]
}

ved_start || { fail "the daemon starts"; finish; }
ensure_template || { fail "the template $TEMPLATE is there"; finish; }

# --- 20 VEs at once ---------------------------------------------------------

begin_case "$N VEs created concurrently (vectl create in the background)"
run_all create "$VECTL_BIN" --socket "$SOCK" create @ --ostemplate "$TEMPLATE" \
        --hostname ve@ --diskspace 1G
assert_eq "$FAILS" 0 "failed creates"
api GET '/v1/ves?state=stopped'
assert_json '.ves | length' "$N" "stopped VEs"
assert_eq "$(host_leftovers)" "" "what the host holds of stopped VEs"

begin_case "$N VEs started concurrently (POST .../state in the background)"
run_all start api_op_wait POST /v1/ves/@/state '{"action":"start"}'
assert_eq "$FAILS" 0 "failed starts"
api GET '/v1/ves?state=running'
assert_json '.ves | length' "$N" "running VEs"
assert_eq "$(losetup --list --noheadings --output BACK-FILE | grep -c "^$STATE_DIR/ves/")" \
        "$N" "loop devices of the VEs"
# Two mounts per running VE: the private area, and the host's idmapped view of it.
assert_eq "$(awk -v s="$STATE_DIR/ves/" 'index($5, s) == 1' /proc/self/mountinfo | wc -l)" \
        "$((2 * N))" "mounts of the VEs"
assert_eq "$(ls -d /sys/fs/cgroup/freezer/"$INSTANCE"/*/ 2>/dev/null | wc -l)" "$N" \
        "freezer cgroups of the VEs"
PIDS=$(for c in $CTIDS; do ve_init_pid "$c"; done | sort -u | grep -c .)
assert_eq "$PIDS" "$N" "distinct init pids"
api GET /v1/ves
assert_json '[.ves[].idmap.uid_base] | unique | length' "$N" "distinct uid ranges"

begin_case "each of the $N VEs answers exec with its own hostname"
BAD=0
for c in $CTIDS; do
        exec_hostname "$c" || { BAD=$((BAD + 1)); echo "   exec in $c: $STATUS $BODY"; }
done
assert_eq "$BAD" 0 "VEs where exec failed"

begin_case "$N VEs stopped concurrently (vectl stop in the background)"
run_all stop "$VECTL_BIN" --socket "$SOCK" stop @
assert_eq "$FAILS" 0 "failed stops"
api GET '/v1/ves?state=stopped'
assert_json '.ves | length' "$N" "stopped VEs"
assert_eq "$(host_leftovers)" "" "what the host holds of stopped VEs"

# signal_steps_from OP: how many stop operations from OP on have sent their halt
# signal (their "signal" step's work is logged as it ends, before the wait).
signal_steps_from()
{
        grep -o 'Operation [0-9]* (stop) step signal' "$VED_LOG" | awk -v from="$1" '$2 >= from' |
                wc -l
}

all_signalled()
{
        [ "$(signal_steps_from "$FIRST_STOP_OP")" -ge "$N" ]
}

all_stopped()
{
        [ "$(curl -s --unix-socket "$SOCK" "http://ved/v1/ves?state=stopped" |
                jq '.ves | length')" = "$N" ]
}

begin_case "$N inits that ignore the halt signal, stopped at once: all wait together, no worker held"
# busybox cat as PID 1 reads its console; a pid namespace's init gets no signal
# it has no handler for, so SIGPWR does nothing: each stop waits its 5 s.
for c in $CTIDS; do
        vectl set "$c" --init /bin/cat --stop-timeout 5 >/dev/null 2>&1 || echo "   set $c failed"
done
run_all start api_op_wait POST /v1/ves/@/state '{"action":"start"}'
assert_eq "$FAILS" 0 "failed starts"
api GET /v1/operations
FIRST_STOP_OP=$(($(jqb '[.operations[].id] | max') + 1))
for c in $CTIDS; do
        api POST "/v1/ves/$c/state" '{"action":"stop"}'
        [ "$STATUS" = 202 ] || echo "   stop $c: $STATUS $BODY"
done
check "every stop has signalled its init while the first still waits" wait_until 4 all_signalled
THREADS=$(awk '/^Threads:/ { print $2 }' "/proc/$VED_PID/status")
check "the daemon runs $THREADS threads (at most 16 workers and the loop)" test "$THREADS" -le 17
check "the stops end, each after its timeout" wait_until 30 all_stopped
assert_eq "$(grep -c 'did not halt within 5 s: killing it' "$VED_LOG")" "$N" \
        "the log says each was killed"
api GET '/v1/operations?status=failed'
assert_json "[.operations[] | select(.id >= $FIRST_STOP_OP)] | length" 0 "failed stops"
assert_eq "$(host_leftovers)" "" "what the host holds of stopped VEs"

begin_case "$N VEs destroyed concurrently (DELETE in the background)"
run_all destroy api_op_wait DELETE /v1/ves/@
assert_eq "$FAILS" 0 "failed destroys"
api GET /v1/ves
assert_json '.ves | length' 0 "VEs left"
assert_eq "$(ls "$STATE_DIR/ves" 2>/dev/null | wc -l)" 0 "directories left in ves/"

begin_case "afterwards losetup -a, mountinfo and the cgroup tree hold nothing of them"
assert_eq "$(losetup -a | grep -c "$STATE_DIR/")" 0 "losetup -a lines"
assert_eq "$(grep -c " $STATE_DIR/ves/" /proc/self/mountinfo)" 0 "mountinfo lines"
assert_eq "$(find /sys/fs/cgroup/*/"$INSTANCE" /sys/fs/cgroup/"$INSTANCE" -mindepth 1 -type d \
        ! -path "*/$INSTANCE/helpers" 2>/dev/null | wc -l)" 0 \
        "cgroup directories below the instance (but the daemon's helpers)"
assert_eq "$(host_leftovers)" "" "what the host holds of this instance"

begin_case "start and stop racing on the same VEs: every answer is 202 or 409, no half state"
check "create 230" api_op_wait POST /v1/ves \
        "{\"ctid\":230,\"ostemplate\":\"$TEMPLATE\",\"hostname\":\"ve230\"}"
for round in 1 2 3 4 5 6; do
        sleep 0.$((RANDOM % 10))
        RACE=()
        for a in start stop start stop restart; do
                curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 --unix-socket "$SOCK" \
                        -X POST -H 'Content-Type: application/json' -d "{\"action\":\"$a\"}" \
                        http://ved/v1/ves/230/state >>"$T/race.codes" &
                RACE+=($!)
                bg_track $!
        done
        for p in "${RACE[@]}"; do
                wait "$p"
        done
done
echo "   (answers: $(sort "$T/race.codes" | uniq -c | tr -s ' \n' ' '))"
assert_eq "$(sort -u "$T/race.codes" | grep -v -x -e 202 -e 409)" "" "answers other than 202 and 409"
assert_match "$(cat "$T/race.codes")" 202 "at least one action accepted"
check "VE 230 settles running or stopped within 30 s" wait_until 30 \
        eval '[[ $(ve_state 230) =~ ^(running|stopped)$ ]]'
echo "   (VE 230 is $(ve_state 230))"
if [ "$(ve_state 230)" = running ]; then
        check "VE 230 runs: exec works" exec_hostname 230
else
        assert_eq "$(host_leftovers 230)" "" "what the host holds of stopped VE 230"
fi
check "destroy 230" api_op_wait DELETE '/v1/ves/230?force=true'
assert_eq "$(host_leftovers)" "" "what the host holds of this instance"

# --- hostile tarballs -------------------------------------------------------

OUTSIDE=$T/outside
mkdir -p "$OUTSIDE" "$T/hostile"
PASSWD_SUM=$(sha256sum /etc/passwd | cut -d' ' -f1)

python3 - "$T/hostile" "$OUTSIDE" "$INSTANCE" <<'EOF'
import io, sys, tarfile

out, outside, inst = sys.argv[1:4]


def member(name, data=b"evil\n", **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    if ti.type == tarfile.REGTYPE:
        ti.size = len(data)
        return ti, io.BytesIO(data)
    return ti, None


def make(fname, members, mode="w"):
    with tarfile.open(f"{out}/{fname}", mode, format=tarfile.PAX_FORMAT) as tf:
        d = tarfile.TarInfo("etc")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tf.addfile(d)
        tf.addfile(*member("etc/hostname", b"ok\n"))
        for ti, f in members:
            tf.addfile(ti, f)


up = "../" * 16
make("dotdot.tar", [member(f"{up}tmp/evil-{inst}-dotdot")])
make("dotdot-inner.tar", [member(f"etc/../../evil-{inst}-inner")])
make("absolute.tar.gz", [member(f"/tmp/evil-{inst}-abs")], "w:gz")
make("symlink-abs.tar", [member("link", type=tarfile.SYMTYPE, linkname=outside),
                         member("link/passwd", b"root::0:0::/:/bin/sh\n")])
make("symlink-rel.tar", [member("etc/link", type=tarfile.SYMTYPE,
                                linkname=up + outside.lstrip("/")),
                         member("etc/link/passwd", b"root::0:0::/:/bin/sh\n")])
make("hardlink.tar", [member("etc/shadow-copy", type=tarfile.LNKTYPE,
                             linkname="/etc/shadow")])
make("chardev.tar", [member("dev/evil-mem", type=tarfile.CHRTYPE, devmajor=1, devminor=1)])
make("blockdev.tar", [member("dev/evil-sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0)])

# A member whose header says 20 GiB, followed by a little data: a daemon that
# trusted the header would fill the disk; the cap must refuse it at the header.
with open(f"{out}/oversized.tar", "wb") as f:
    ti = tarfile.TarInfo("big.img")
    ti.size = 20 << 30
    f.write(ti.tobuf(format=tarfile.PAX_FORMAT))
    f.write(b"\0" * (1 << 20))
EOF

HOSTILE="dotdot.tar:'\.\.' dotdot-inner.tar:'\.\.' absolute.tar.gz:absolute
symlink-abs.tar:symlink symlink-rel.tar:symlink hardlink.tar:hardlink chardev.tar:device
blockdev.tar:device oversized.tar:limit"

for entry in $HOSTILE; do
        file=${entry%%:*}
        why=${entry#*:}
        name=hostile${file%%.*}
        name=${name//-/}
        begin_case "hostile tarball $file: the import fails ($why), nothing escapes"
        T0=$SECONDS
        # The request itself is refused: the POST answers once the tarball is
        # checked.
        api --ct application/octet-stream POST "/v1/templates?name=$name" "@$T/hostile/$file"
        assert_match "$STATUS" '^4[0-9][0-9]$' "the import's status"
        assert_error "$STATUS"
        MSG=$(jqb .error.message)
        echo "   (error after $((SECONDS - T0)) s: $MSG)"
        assert_match "$MSG" "$why" "the message names the problem"
        check "refused within 20 s" test $((SECONDS - T0)) -lt 20
        api GET "/v1/templates/$name"
        assert_error 404
        api GET /v1/templates
        assert_json "[.templates[].name] | index(\"$name\")" null "$name in the template list"
        check "no $name.img" test ! -e "$STATE_DIR/templates/$name.img"
        assert_eq "$(template_leftovers)" "" "staging, upload or temporary image files"
        assert_eq "$(ls -A "$OUTSIDE")" "" "files in the symlink target $OUTSIDE"
        assert_eq "$(ls /tmp/evil-"$INSTANCE"-* 2>/dev/null)" "" "files in /tmp"
        assert_eq "$(find "$T" "$STATE_DIR/templates" -name 'evil-*' 2>/dev/null)" "" \
                "evil-* files under the test's directory"
        assert_eq "$(sha256sum /etc/passwd | cut -d' ' -f1)" "$PASSWD_SUM" "/etc/passwd"
        # (<template>.sizes holds the grown clones kept for creates: ve/image.c.)
        assert_eq "$(find "$STATE_DIR/templates" -mindepth 1 -maxdepth 1 ! -name "$TEMPLATE.img" \
                ! -name "$TEMPLATE.sizes" | wc -l)" 0 "entries in templates/ besides $TEMPLATE.img"
done

begin_case "after the hostile imports, a good one still works"
api --ct application/octet-stream POST "/v1/templates?name=good" "@$(template_tarball)"
assert_status 202
wait_op "$(op_id_from_location)" 120
assert_eq "$OP_STATUS" succeeded "import of the good tarball"
api DELETE /v1/templates/good
assert_status 200
assert_eq "$(template_leftovers)" "" "staging, upload or temporary image files"

begin_case "four uploads of one template name at once: one is taken, the others are 409"
TARBALL=$(template_tarball)
PIDS=()
for i in 1 2 3 4; do
        curl -s --max-time 60 --unix-socket "$SOCK" -X POST \
                -H "Content-Type: application/octet-stream" --data-binary "@$TARBALL" \
                -o "$T/same-$i.json" -w '%{http_code}\n' "http://ved/v1/templates?name=same" \
                >"$T/same-$i.code" &
        PIDS+=($!)
done
wait "${PIDS[@]}"
CODES=$(cat "$T"/same-*.code | sort | tr '\n' ' ')
assert_eq "$CODES" "202 409 409 409 " "the answers' statuses"
for i in 1 2 3 4; do
        if [ "$(cat "$T/same-$i.code")" = 409 ]; then
                assert_match "$(jq -r .error.message "$T/same-$i.json")" \
                        "already exists|being imported" "a refused upload's message"
        else
                wait_op "$(jq -r .operation.id "$T/same-$i.json")" 120
                assert_eq "$OP_STATUS" succeeded "the upload that was taken"
        fi
done
api GET /v1/templates
assert_json '[.templates[] | select(.name == "same")] | length' 1 "templates named same"
api DELETE /v1/templates/same
assert_status 200
assert_eq "$(template_leftovers)" "" "staging, upload or temporary image files"

finish
