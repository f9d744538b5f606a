# Helpers for ved's integration tests; source it from a test script:
#
#   . "$(dirname "$0")/../lib/common.sh"
#   ved_start
#   begin_case "create answers 202"
#   api POST /v1/ves '{"ctid":101,"ostemplate":"busybox"}'
#   assert_status 202
#   ...
#   finish
#
# Every script gets its own temporary directory $T (state dir $T/state, socket $SOCK,
# daemon log $T/ved.log) and a unique --instance, so tests never collide with each
# other or with a real ved on the host. An EXIT trap stops the daemon, ends the
# background jobs the test started and removes $T, also when the script fails.
#
# Environment:
#   VED_BUILD     build directory holding bin/ved and bin/vectl (default $REPO/build)
#   VED_KEEP_TMP  1 keeps $T after the run, to look at the state and log
#   VED_VERBOSE   1 prints every request and answer
#   VED_TEST_TEMPLATE  the OS template VEs are created from (default busybox)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${VED_BUILD:-$REPO/build}
VED_BIN=$BUILD/bin/ved
VECTL_BIN=$BUILD/bin/vectl

T=$(mktemp -d "${TMPDIR:-/tmp}/vedtest.XXXXXX")
SOCK=$T/ved.sock
STATE_DIR=$T/state
VED_LOG=$T/ved.log
# --instance takes 1-8 letters and digits.
INSTANCE=vt$(($$ % 1000000))
TEMPLATE=${VED_TEST_TEMPLATE:-busybox}
VED_PID=
BG_PIDS=()

STATUS=
BODY=
HEADERS_FILE=$T/last.headers

N_PASSED=0
N_FAILED=0
CASE_NAME=
CASE_FAILED=0
CASE_OPEN=0
FINISHED=0

for tool in curl jq sqlite3; do
        if ! command -v "$tool" >/dev/null; then
                echo "tests need $tool: apt-get install $tool" >&2
                exit 1
        fi
done

# --- the daemon -------------------------------------------------------------

ved_running()
{
        [ -n "$VED_PID" ] && kill -0 "$VED_PID" 2>/dev/null
}

# ved_start [EXTRA_ARGS...]: start the daemon in the background and wait until its
# socket answers GET /v1/host. Environment variables set by the caller (such as
# VED_TEST_CRASH_AT) reach the daemon. Returns non-zero (and prints the log) if the
# daemon exits or does not answer within VED_START_TIMEOUT seconds (default 15).
ved_start()
{
        local deadline

        if [ ! -x "$VED_BIN" ]; then
                echo "no daemon at $VED_BIN: build first, or set VED_BUILD" >&2
                return 1
        fi
        mkdir -p "$STATE_DIR"
        "$VED_BIN" --foreground --state-dir "$STATE_DIR" --socket "$SOCK" \
                --instance "$INSTANCE" --log-level debug --template-recipes "$REPO/templates" \
                "$@" >>"$VED_LOG" 2>&1 &
        VED_PID=$!
        deadline=$((SECONDS + ${VED_START_TIMEOUT:-15}))
        while [ "$SECONDS" -lt "$deadline" ]; do
                if ! ved_running; then
                        wait "$VED_PID" 2>/dev/null
                        VED_EXIT=$?
                        VED_PID=
                        echo "ved exited with status $VED_EXIT during startup; its log:" >&2
                        tail -n 30 "$VED_LOG" | sed 's/^/  | /' >&2
                        return 1
                fi
                if [ -S "$SOCK" ] && curl -s -o /dev/null --max-time 2 --unix-socket "$SOCK" \
                        http://ved/v1/host; then
                        return 0
                fi
                sleep 0.1
        done
        echo "ved did not answer on $SOCK within ${VED_START_TIMEOUT:-15}s; its log:" >&2
        tail -n 30 "$VED_LOG" | sed 's/^/  | /' >&2
        ved_kill9
        return 1
}

# ved_start_expect_fail [EXTRA_ARGS...]: run the daemon in the foreground expecting it
# to refuse to start; sets VED_EXIT and VED_OUTPUT (what it printed). A daemon that
# is still running after VED_START_TIMEOUT seconds is killed and VED_EXIT is 999.
ved_start_expect_fail()
{
        local out=$T/expect-fail.out

        mkdir -p "$STATE_DIR"
        timeout -s KILL "${VED_START_TIMEOUT:-15}" "$VED_BIN" --foreground \
                --state-dir "$STATE_DIR" --socket "$SOCK" --instance "$INSTANCE" \
                --log-level debug "$@" >"$out" 2>&1
        VED_EXIT=$?
        [ "$VED_EXIT" -eq 137 ] && VED_EXIT=999
        VED_OUTPUT=$(cat "$out")
        cat "$out" >>"$VED_LOG"
}

# ved_stop: SIGTERM and wait (VED_STOP_TIMEOUT seconds, default 20, then SIGKILL and
# failure). VED_EXIT gets the daemon's exit status.
ved_stop()
{
        local deadline

        ved_running || { VED_PID=; return 0; }
        kill -TERM "$VED_PID"
        deadline=$((SECONDS + ${VED_STOP_TIMEOUT:-20}))
        while ved_running && [ "$SECONDS" -lt "$deadline" ]; do
                sleep 0.1
        done
        if ved_running; then
                echo "ved did not stop within ${VED_STOP_TIMEOUT:-20}s of SIGTERM: killing it" >&2
                ved_kill9
                return 1
        fi
        wait "$VED_PID" 2>/dev/null
        VED_EXIT=$?
        VED_PID=
        return 0
}

# ved_kill9: SIGKILL, as a crash would.
ved_kill9()
{
        ved_running || { VED_PID=; return 0; }
        kill -KILL "$VED_PID"
        wait "$VED_PID" 2>/dev/null
        VED_EXIT=$?
        VED_PID=
}

# ved_wait_exit SECONDS: wait for the daemon to exit by itself (a test hook that
# crashes it); returns 1 if it is still running then.
ved_wait_exit()
{
        local deadline=$((SECONDS + $1))

        while ved_running && [ "$SECONDS" -lt "$deadline" ]; do
                sleep 0.1
        done
        ved_running && return 1
        wait "$VED_PID" 2>/dev/null
        VED_EXIT=$?
        VED_PID=
        return 0
}

# bg_track PID: a background job that the cleanup trap must end.
bg_track()
{
        BG_PIDS+=("$1")
}

# --- requests ---------------------------------------------------------------

# api [-H HEADER]... [--ct TYPE | --no-ct] METHOD PATH [BODY]
#
# Sends a request over the unix socket and sets STATUS (the HTTP status, 000 when
# there was no answer), BODY (the answer's body) and the answer's headers in
# $HEADERS_FILE (read them with `header NAME`). BODY may be @FILE to send a file's
# bytes as they are. Content-Type is application/json unless --ct or --no-ct says
# otherwise. Always returns 0: assert what you expect.
api()
{
        local ct=application/json method path out
        local -a extra=() data=()

        while [ $# -gt 0 ]; do
                case $1 in
                -H) extra+=(-H "$2"); shift 2 ;;
                --ct) ct=$2; shift 2 ;;
                --no-ct) ct=; shift ;;
                *) break ;;
                esac
        done
        method=$1 path=$2
        [ -n "$ct" ] && extra+=(-H "Content-Type: $ct")
        [ $# -ge 3 ] && data=(--data-binary "$3")
        out=$(curl -s --max-time "${API_TIMEOUT:-30}" --unix-socket "$SOCK" -X "$method" \
                -D "$HEADERS_FILE" "${extra[@]}" "${data[@]}" -w '\n%{http_code}' \
                "http://ved$path")
        STATUS=${out##*$'\n'}
        BODY=${out%$'\n'*}
        [ -z "$STATUS" ] && STATUS=000
        if [ "${VED_VERBOSE:-0}" = 1 ]; then
                echo "  > $method $path ${3:0:200}" >&2
                echo "  < $STATUS ${BODY:0:400}" >&2
        fi
        return 0
}

# header NAME: the value of a header of the last answer ("" when absent).
header()
{
        [ -f "$HEADERS_FILE" ] || return 0
        tr -d '\r' <"$HEADERS_FILE" | awk -v n="$(echo "$1" | tr 'A-Z' 'a-z')" '
                { i = index($0, ":"); if (i == 0) next;
                  k = tolower(substr($0, 1, i - 1));
                  if (k == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }'
}

# jqb EXPR [JSON]: jq -r EXPR on JSON (default $BODY); prints nothing on bad JSON.
jqb()
{
        local json=${2-$BODY}

        jq -r "$1" <<<"$json" 2>/dev/null
}

# op_id_from_location: the operation id from the last answer's Location header.
op_id_from_location()
{
        header Location | sed -n 's#^/v1/operations/\([0-9][0-9]*\)$#\1#p'
}

# wait_op ID [SECONDS]: wait for an operation; sets BODY/STATUS like api, and
# OP_STATUS to its final status (pending/running/succeeded/failed, "" if not found).
wait_op()
{
        api GET "/v1/operations/$1?wait=${2:-30}"
        OP_STATUS=$(jqb '.status // empty')
}

# vectl ARGS...: the CLI, talking to this test's daemon.
vectl()
{
        "$VECTL_BIN" --socket "$SOCK" "$@"
}

# template_tarball [NAME]: prints the path of the OS template tarball that the recipe
# templates/NAME/build makes (default $TEMPLATE), cached as $BUILD/cache/NAME.tar.gz
# and built only when missing or older than its recipe. Returns non-zero (with the
# reason on stderr) when the build fails.
template_tarball()
{
        local name=${1:-$TEMPLATE} cache=$BUILD/cache
        local recipe=$REPO/templates/${1:-$TEMPLATE}/build out=$cache/${1:-$TEMPLATE}.tar.gz

        if [ ! -s "$out" ] || [ "$recipe" -nt "$out" ]; then
                mkdir -p "$cache" || return 1
                if ! "$recipe" "$out.tmp$$" >"$T/template-build.log" 2>&1; then
                        echo "building template $name failed:" >&2
                        tail -n 20 "$T/template-build.log" >&2
                        rm -f "$out.tmp$$"
                        return 1
                fi
                mv -f "$out.tmp$$" "$out" || return 1
        fi
        echo "$out"
}

# ensure_template: make sure the daemon has the OS template $TEMPLATE, importing the
# tarball its recipe builds (see template_tarball) when it lacks it.
# A daemon that does not serve /v1/templates yet takes any template name: nothing
# to do. Returns non-zero (with the reason on stderr) when the import fails.
ensure_template()
{
        local tarball sum

        api GET /v1/templates
        [ "$STATUS" = 200 ] || return 0
        jq -e --arg n "$TEMPLATE" 'any(.templates[]; .name == $n)' <<<"$BODY" >/dev/null &&
                return 0
        tarball=$(template_tarball) || return 1
        sum=$(sha256sum "$tarball" | cut -d' ' -f1)
        api --ct application/octet-stream POST "/v1/templates?name=$TEMPLATE&sha256=$sum" \
                "@$tarball"
        if [ "$STATUS" != 202 ]; then
                echo "importing template $TEMPLATE answered $STATUS: $BODY" >&2
                return 1
        fi
        wait_op "$(op_id_from_location)" 300
        if [ "$OP_STATUS" != succeeded ]; then
                echo "importing template $TEMPLATE: operation $OP_STATUS: $BODY" >&2
                return 1
        fi
}

# ensure_debian_template: make sure the daemon has debian-12-x86_64. Its tarball is
# cached as $BUILD/cache/debian-12-x86_64.tar.zst (with .json metadata): imported
# from there when present and newer than the recipe, else built by the daemon itself
# (vectl template build debian-12: minutes of debootstrap from the host's mirror) and
# copied into the cache, so a clean clone debootstraps once. Returns non-zero (with
# the reason on stderr) when it fails.
DEBIAN_TEMPLATE=debian-12-x86_64
ensure_debian_template()
{
        local cache=$BUILD/cache/$DEBIAN_TEMPLATE.tar.zst built sum

        api GET "/v1/templates/$DEBIAN_TEMPLATE"
        [ "$STATUS" = 200 ] && return 0
        if [ -s "$cache" ] && [ ! "$REPO/templates/debian/build" -nt "$cache" ]; then
                sum=$(jq -r '.sha256 // empty' "$cache.json" 2>/dev/null)
                [ -n "$sum" ] || sum=$(sha256sum "$cache" | cut -d' ' -f1)
                api --ct application/octet-stream \
                        POST "/v1/templates?name=$DEBIAN_TEMPLATE&sha256=$sum" "@$cache"
                if [ "$STATUS" != 202 ]; then
                        echo "importing $cache answered $STATUS: $BODY" >&2
                        return 1
                fi
                wait_op "$(op_id_from_location)" 600
                [ "$OP_STATUS" = succeeded ] && return 0
                echo "importing $cache: operation $OP_STATUS: $BODY" >&2
                return 1
        fi
        echo "building $DEBIAN_TEMPLATE with debootstrap (cached afterwards in $cache)" >&2
        if ! timeout 3600 "$VECTL_BIN" --socket "$SOCK" template build debian-12 >&2; then
                tail -n 20 "$STATE_DIR/templates/cache/$DEBIAN_TEMPLATE.log" >&2
                return 1
        fi
        built=$STATE_DIR/templates/cache/$DEBIAN_TEMPLATE.tar.zst
        mkdir -p "$BUILD/cache" &&
                cp "$built.json" "$cache.json.tmp$$" && cp "$built" "$cache.tmp$$" &&
                mv -f "$cache.json.tmp$$" "$cache.json" && mv -f "$cache.tmp$$" "$cache"
}

# db_count TABLE [WHERE]: rows in the daemon's SQLite database (readable while it runs).
db_count()
{
        sqlite3 -cmd '.timeout 5000' "$STATE_DIR/ved.db" \
                "select count(*) from $1${2:+ where $2}" 2>/dev/null
}

# events_of TYPE CTID: how many events of TYPE for CTID the daemon has recorded.
events_of()
{
        curl -s --max-time 5 --unix-socket "$SOCK" "http://ved/v1/events?since=0&follow=false" |
                jq -s --arg t "$1" --argjson c "$2" '[.[] | select(.type == $t and .ctid == $c)] | length'
}

# events_over TYPE CTID N: more than N events of TYPE for CTID (for wait_until,
# which runs its command again each time: no "$(...)" in its arguments).
events_over()
{
        [ "$(events_of "$1" "$2")" -gt "$3" ]
}

# ve_run CTID COMMAND...: run in the VE through vectl exec; output in OUT, status in RC.
ve_run()
{
        local ct=$1

        shift
        OUT=$(vectl exec "$ct" "$@" 2>&1)
        RC=$?
}

# check_exec_stopper CTID TIMEOUT_MS: a process of the VE stops (SIGSTOP) the next
# three entering commands before their execve (while their comm is "ved"). Each of
# those execs must answer 409 as soon as the daemon sees the command stopped, well
# before its start timeout (VED_TEST_EXEC_START_TIMEOUT_MS, which was TIMEOUT_MS
# when the daemon started), so that a VE cannot hold the daemon's workers; the
# next exec must work, and the daemon must be left with no stopped or unreaped
# child. A command may reach its execve between the stopper's look at its comm and
# its SIGSTOP: once stopped (or gone), a command whose comm is no longer "ved" is
# the VE's own program, which the stopper lets go on (SIGCONT) and does not count.
check_exec_stopper()
{
        local ct=$1 timeout_ms=$2 stopped=0 answered=0 slowest=0 i t0

        ve_run "$ct" sh -c 'cat > /tmp/stopper <<"EOF"
n=0 last=
while [ $n -lt 3 ]; do
        for p in /proc/[0-9]*; do
                read c < $p/comm 2>/dev/null || continue
                pid=${p#/proc/}
                [ "$c" = ved ] && [ "$pid" != "$last" ] && kill -STOP $pid 2>/dev/null || continue
                last=$pid
                while read -r f1 f2 st rest < $p/stat 2>/dev/null &&
                        [ "$st" != T ] && [ "$st" != t ] && [ "$st" != Z ]; do :; done
                read c < $p/comm 2>/dev/null || c=ved # gone: the daemon killed it
                if [ "$c" = ved ]; then n=$((n + 1)); else kill -CONT $pid; fi
        done
done
EOF
setsid sh /tmp/stopper </dev/null >/dev/null 2>&1 &'
        assert_eq "$RC" 0 "start the stopper ($OUT)"
        for i in $(seq 1 12); do
                t0=$SECONDS
                api POST "/v1/ves/$ct/exec" '{"command":["true"]}'
                [ $((SECONDS - t0)) -gt "$slowest" ] && slowest=$((SECONDS - t0))
                case $STATUS in
                200) answered=$((answered + 1)) ;;
                409)
                        assert_match "$BODY" "stopped the command before it started" \
                                "the error of a stopped command"
                        stopped=$((stopped + 1))
                        ;;
                *) fail "exec answered $STATUS: $BODY" ;;
                esac
                [ "$stopped" = 3 ] && [ "$answered" -ge 1 ] && break
        done
        assert_eq "$stopped" 3 "execs whose command the VE stopped, each answered 409"
        check "an exec works once the stopper is gone (answered: $answered)" \
                test "$answered" -ge 1
        check "no exec waited for the ${timeout_ms} ms timeout (slowest: ${slowest}s)" \
                test "$slowest" -le $((timeout_ms / 1000 / 2))
        check "no stopped or unreaped child of the daemon is left" \
                sh -c "! ps -o stat= --ppid $VED_PID | grep -q '[TZ]'"
        pkill -KILL -f "sh /tmp/stopper" # from the host, in case it missed some
}

# systemd_running CTID: `systemctl is-system-running` in the VE says running (its
# answer in OUT), for wait_until.
systemd_running()
{
        ve_run "$1" systemctl is-system-running
        [ "$OUT" = running ]
}

# start_systemd_ve CTID: vectl start, then up to 60 s for systemd to say running
# (the time it took is printed; the failed units when it does not), and systemd is
# PID 1. Assertions of the current case.
start_systemd_ve()
{
        local start out

        start=$(date +%s.%N)
        out=$(vectl start "$1" 2>&1)
        assert_eq "$?" 0 "vectl start: $out"
        if wait_until 60 systemd_running "$1"; then
                pass
                echo "   running after $(echo "$(date +%s.%N) - $start" | bc) s"
        else
                fail "is-system-running: $OUT"
                ve_run "$1" systemctl --failed --no-legend
                echo "   failed units: $OUT"
        fi
        ve_run "$1" cat /proc/1/comm
        assert_eq "$OUT" systemd "PID 1"
}

# stop_systemd_ve CTID: vectl stop of a VE booted by systemd; asserts it took under
# 10 s (systemd's own shutdown on SIGRTMIN+3: the stop timeout, 120 s, never came
# into it), that its init is gone and that the VE is stopped.
stop_systemd_ve()
{
        local pid start took out

        pid=$(ve_init_pid "$1")
        start=$(date +%s.%N)
        out=$(vectl stop "$1" 2>&1)
        assert_eq "$?" 0 "vectl stop: $out"
        took=$(echo "$(date +%s.%N) - $start" | bc)
        echo "   stop took $took s"
        check "stop took $took s, under 10 s" test "$(echo "$took < 10" | bc)" = 1
        check "init $pid is gone" pid_gone "$pid"
        assert_eq "$(ve_state "$1")" stopped "state"
}

# --- what VEs hold on the host ------------------------------------------------

# ve_cgroup_dirs CTID: the VE's cgroup directories that exist, one a line (cgroup v1:
# one per hierarchy, /sys/fs/cgroup/<controller>/$INSTANCE/CTID; v2: one).
ve_cgroup_dirs()
{
        local d

        for d in /sys/fs/cgroup/"$INSTANCE"/"$1" /sys/fs/cgroup/*/"$INSTANCE"/"$1"; do
                [ -d "$d" ] && echo "$d"
        done
        return 0
}

# ve_init_pid CTID: the host pid of the VE's init (the process of its cgroup that is
# pid 1 in its own pid namespace); prints nothing when there is none.
ve_init_pid()
{
        local d pid ns

        for d in $(ve_cgroup_dirs "$1"); do
                [ -r "$d/cgroup.procs" ] || continue
                while read -r pid; do
                        ns=$(awk '/^NSpid:/ { print (NF > 2 ? $NF : "") }' "/proc/$pid/status" \
                                2>/dev/null)
                        if [ "$ns" = 1 ]; then
                                echo "$pid"
                                return 0
                        fi
                done <"$d/cgroup.procs"
        done
        return 0
}

# host_leftovers [CTID...]: prints, one a line, what the host still holds for this
# test: loop devices backed by files under $STATE_DIR, mounts under $STATE_DIR, and
# the instance's cgroup directories; with CTIDs, only what belongs to those VEs
# (files under ves/CTID/ and their cgroups). While the daemon runs, its lxcfs and
# the templates' shared layers (templates/<name>.layer, for layered VEs) are not
# counted. Prints nothing when all is clean.
host_leftovers()
{
        local ctid d t h
        local -a prefixes=()

        if [ $# -gt 0 ]; then
                for ctid in "$@"; do
                        prefixes+=("$STATE_DIR/ves/$ctid/")
                done
        else
                prefixes=("$STATE_DIR/")
        fi
        # The daemon's own lxcfs and its templates' shared layers (layered VEs) are
        # no VE's, while the daemon runs.
        t=$(ved_running && echo "$STATE_DIR/templates/")
        for d in "${prefixes[@]}"; do
                losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null |
                        awk -v s="$d" -v t="$t" 'index($2, s) == 1 &&
                                !(t != "" && index($2, t) == 1 && $2 ~ /\.img$/) {
                                print "loop device: " $1 " " $2 }'
                awk -v s="$d" -v l="$(ved_running && echo "$STATE_DIR/lxcfs")" -v t="$t" \
                        'index($5 "/", s) == 1 && $5 != l &&
                        !(t != "" && index($5, t) == 1 && $5 ~ /\.layer$/) { print "mount: " $5 }' \
                        /proc/self/mountinfo
        done
        if [ $# -gt 0 ]; then
                for ctid in "$@"; do
                        ve_cgroup_dirs "$ctid" | sed 's/^/cgroup: /'
                done
        else
                # The daemon's lxcfs and ve-statfsd live in <instance>/helpers.
                h=$(ved_running && echo helpers)
                for d in /sys/fs/cgroup/"$INSTANCE" /sys/fs/cgroup/*/"$INSTANCE"; do
                        [ -d "$d" ] && find "$d" -mindepth 1 -type d | grep -vx "$d/${h:-/}" |
                                sed 's/^/cgroup: /'
                done
        fi
        return 0
}

# template_leftovers: staging trees, uploads and half-made images left in templates/.
template_leftovers()
{
        [ -d "$STATE_DIR/templates" ] || return 0
        find "$STATE_DIR/templates" -mindepth 1 -maxdepth 1 \( -name '.staging-*' -o \
                -name '.upload-*' -o -name '.*.img.tmp-*' \)
}

# pid_alive PID: the process exists and is not a zombie (an adopted VE init that
# ends is reaped by the host's init, maybe a moment later).
pid_alive()
{
        local st

        st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
        [ -n "$st" ] && [[ $st != Z* ]]
}

# pid_gone PID: the opposite, for check and wait_until.
pid_gone()
{
        ! pid_alive "$1"
}

# wait_until SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds; returns 1
# if it still fails after SECONDS.
wait_until()
{
        local deadline=$((SECONDS + $1))

        shift
        while ! "$@"; do
                [ "$SECONDS" -ge "$deadline" ] && return 1
                sleep 0.2
        done
        return 0
}

# ve_state CTID: the VE's state from GET /v1/ves/CTID ("" when there is none). Leaves
# STATUS and BODY alone.
ve_state()
{
        curl -s --max-time 10 --unix-socket "$SOCK" "http://ved/v1/ves/$1" 2>/dev/null |
                jq -r '.state // empty' 2>/dev/null
}

# ves_teardown_all: destroy (with force) every VE the daemon knows, starting the
# daemon again (without VED_TEST_CRASH_AT) when it is not running, then remove by
# hand whatever the host still holds for this test (see host_leftovers): kill the
# processes of the instance's cgroups and remove them, unmount and detach. For a
# test's cleanup (define test_cleanup to call it); says on stderr what it had to
# remove by hand, which is a daemon bug if the test passed.
ves_teardown_all()
{
        local ctid id d pid
        local -a ops=()

        # A daemon that no longer answers (stopping, or stuck) is replaced.
        if ved_running && ! curl -s -o /dev/null --max-time 5 --unix-socket "$SOCK" \
                http://ved/v1/host; then
                ved_stop >/dev/null 2>&1 || ved_kill9
        # The lxcfs and ve-statfsd of a daemon that was killed (a clean stop ends them).
        helpers_cleanup
        fi
        if ! ved_running && [ -f "$STATE_DIR/ved.db" ]; then
                VED_TEST_CRASH_AT='' ved_start >/dev/null 2>&1
        fi
        if ved_running; then
                api GET /v1/ves
                for ctid in $(jqb '.ves[]?.ctid'); do
                        # 409 while another operation of the VE runs: wait for it.
                        for _ in $(seq 60); do
                                api DELETE "/v1/ves/$ctid?force=true"
                                [ "$STATUS" = 409 ] || break
                                sleep 0.5
                        done
                        id=$(op_id_from_location)
                        [ -n "$id" ] && ops+=("$id")
                done
                for id in "${ops[@]}"; do
                        wait_op "$id" 60
                done
        fi
        # What is left now was left by the daemon: remove it by hand (not the
        # cgroup of a running daemon's lxcfs and ve-statfsd).
        for d in /sys/fs/cgroup/"$INSTANCE" /sys/fs/cgroup/*/"$INSTANCE"; do
                [ -d "$d" ] || continue
                find "$d" -depth -mindepth 1 -type d | while read -r sub; do
                        [ "$sub" = "$d/helpers" ] && ved_running && continue
                        echo "cleanup: removing cgroup $sub" >&2
                        [ -w "$sub/cgroup.kill" ] && echo 1 >"$sub/cgroup.kill" 2>/dev/null
                        for pid in $(cat "$sub/cgroup.procs" 2>/dev/null); do
                                kill -KILL "$pid" 2>/dev/null
                        done
                        for _ in 1 2 3 4 5 6 7 8 9 10; do
                                rmdir "$sub" 2>/dev/null && break
                                sleep 0.2
                        done
                done
        done
        # Not the daemon's own lxcfs while the daemon runs: its stop ends it.
        awk -v s="$STATE_DIR" -v l="$(ved_running && echo "$STATE_DIR/lxcfs")" \
                'index($5, s "/") == 1 && $5 != l { print $5 }' /proc/self/mountinfo |
                sort -r | while read -r d; do
                echo "cleanup: unmounting $d" >&2
                umount -l "$d"
        done
        losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null |
                awk -v s="$STATE_DIR/" 'index($2, s) == 1 { print $1 }' | while read -r d; do
                echo "cleanup: detaching $d" >&2
                losetup -d "$d"
        done
        return 0
}

# --- cases and assertions ---------------------------------------------------

# begin_case DESCRIPTION: start a test case; assertions until the next begin_case
# (or finish) belong to it, and it passes when all of them pass.
begin_case()
{
        end_case
        CASE_NAME=$1
        CASE_FAILED=0
        CASE_OPEN=1
        echo "-- $CASE_NAME"
}

end_case()
{
        [ "$CASE_OPEN" = 1 ] || return 0
        CASE_OPEN=0
        if [ "$CASE_FAILED" = 0 ]; then
                N_PASSED=$((N_PASSED + 1))
                echo "   ok"
        else
                N_FAILED=$((N_FAILED + 1))
                echo "   FAILED: $CASE_NAME"
        fi
}

# Record one assertion's outcome; outside a case, each assertion counts as one.
record()
{
        local ok=$1 msg=$2

        if [ "$ok" = 1 ]; then
                [ "$CASE_OPEN" = 1 ] || N_PASSED=$((N_PASSED + 1))
                return 0
        fi
        echo "   not ok: $msg"
        if [ "$CASE_OPEN" = 1 ]; then
                CASE_FAILED=1
        else
                N_FAILED=$((N_FAILED + 1))
        fi
        return 1
}

# fail MESSAGE: an assertion that failed outright.
fail()
{
        record 0 "$1"
}

# pass: an assertion that holds (for checks written as plain shell conditions).
pass()
{
        record 1 ""
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check()
{
        local what=$1

        shift
        if "$@"; then
                record 1 ""
        else
                record 0 "$what"
        fi
}

# assert_eq ACTUAL EXPECTED [WHAT]
assert_eq()
{
        if [ "$1" == "$2" ]; then
                record 1 ""
        else
                record 0 "${3:-value}: expected '$2', got '${1:0:300}'"
        fi
}

# assert_ne ACTUAL UNEXPECTED [WHAT]
assert_ne()
{
        if [ "$1" != "$2" ]; then
                record 1 ""
        else
                record 0 "${3:-value}: expected anything but '$2'"
        fi
}

# assert_match ACTUAL ERE [WHAT]
assert_match()
{
        if [[ $1 =~ $2 ]]; then
                record 1 ""
        else
                record 0 "${3:-value}: '${1:0:300}' does not match /$2/"
        fi
}

# assert_status EXPECTED: the last answer's status.
assert_status()
{
        if [ "$STATUS" == "$1" ]; then
                record 1 ""
        else
                record 0 "status: expected $1, got $STATUS (body: ${BODY:0:300})"
        fi
}

# assert_json EXPR EXPECTED [WHAT]: jq -r EXPR on $BODY equals EXPECTED. To test
# other JSON, use assert_eq "$(jqb EXPR "$json")" EXPECTED.
assert_json()
{
        local got

        if ! got=$(jq -r "$1" <<<"$BODY" 2>&1); then
                record 0 "${3:+$3: }jq '$1': the body is not JSON: ${BODY:0:300}"
                return 1
        fi
        if [ "$got" == "$2" ]; then
                record 1 ""
        else
                record 0 "${3:+$3: }jq '$1': expected '$2', got '${got:0:300}'"
        fi
}

# assert_header NAME ERE: a header of the last answer matches.
assert_header()
{
        local v

        v=$(header "$1")
        if [[ -n $v && $v =~ $2 ]]; then
                record 1 ""
        else
                record 0 "header $1: expected /$2/, got '$v'"
        fi
}

# assert_error STATUS: the last answer is STATUS with the API's error form,
# {"error": {"code": STATUS, "message": "<non-empty>"}}.
assert_error()
{
        assert_status "$1"
        if jq -e --argjson c "$1" '(.error | type) == "object" and .error.code == $c and
                        (.error.message | type) == "string" and (.error.message | length) > 0' \
                        <<<"$BODY" >/dev/null 2>&1; then
                record 1 ""
        else
                record 0 "error body: expected {\"error\":{\"code\":$1,\"message\":...}}, got '${BODY:0:300}'"
        fi
}

# --- the end ----------------------------------------------------------------

# finish: print "N passed, N failed" and exit non-zero if anything failed (or nothing ran).
finish()
{
        end_case
        FINISHED=1
        echo
        echo "$N_PASSED passed, $N_FAILED failed"
        if [ "$N_FAILED" -gt 0 ] || [ "$N_PASSED" -eq 0 ]; then
                exit 1
        fi
        exit 0
}

# lxcfs_cleanup: end the lxcfs the daemon started (after a kill -9 it stays) and
# remove its mount.
lxcfs_cleanup()
{
        pidfile_kill "$STATE_DIR/lxcfs.pid" lxcfs
        if awk -v l="$STATE_DIR/lxcfs" '$5 == l { f = 1 } END { exit !f }' /proc/self/mountinfo; then
                umount -l "$STATE_DIR/lxcfs" 2>/dev/null
        fi
        return 0
}

# statfsd_cleanup: end the ve-statfsd the daemon started (after a kill -9 it stays).
statfsd_cleanup()
{
        pidfile_kill "$STATE_DIR/statfsd.pid" ve-statfsd
        rm -f "$STATE_DIR/statfsd.pid"
}

# pidfile_kill FILE COMM: SIGTERM the process FILE names, if it is a live COMM, and
# wait (5 s) until it is gone.
pidfile_kill()
{
        local pid

        pid=$(cat "$1" 2>/dev/null)
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; then
                kill "$pid" 2>/dev/null
                wait_until 5 test ! -e "/proc/$pid" 2>/dev/null
        fi
        return 0
}

# pidfile_renewed FILE OLDPID: FILE names a live process other than OLDPID.
pidfile_renewed()
{
        local pid

        pid=$(cat "$1" 2>/dev/null)
        [ -n "$pid" ] && [ "$pid" != "$2" ] && kill -0 "$pid" 2>/dev/null
}

# helpers_cleanup: lxcfs_cleanup and statfsd_cleanup.
helpers_cleanup()
{
        lxcfs_cleanup
        statfsd_cleanup
}

# instance_cleanup: stop the daemon and remove what its instance leaves on the
# host once its VEs are gone.
instance_cleanup()
{
        ved_stop >/dev/null 2>&1 || ved_kill9
        # The lxcfs and ve-statfsd of a daemon that was killed (a clean stop ends them).
        helpers_cleanup
        # The instance's own cgroups, when a crashed daemon could not remove them.
        rmdir /sys/fs/cgroup/"$INSTANCE"/helpers /sys/fs/cgroup/*/"$INSTANCE"/helpers \
                /sys/fs/cgroup/"$INSTANCE" /sys/fs/cgroup/*/"$INSTANCE" 2>/dev/null
        # Likewise its nftables tables (empty once its VEs are gone).
        nft delete table netdev "ved_$INSTANCE" 2>/dev/null
        nft delete table inet "ved_$INSTANCE" 2>/dev/null
        # Its instance lock (a daemon leaves it, as /run/lock files are left).
        rm -f /run/ved/"$INSTANCE".lock
        # Its uid range claims (idrange.h) that VEs killed by hand left: stale.
        idrange_claims | xargs -r rm -f
}

# idrange_claims: the files of /run/ved/idmap that claim a range for this instance.
idrange_claims()
{
        [ -d /run/ved/idmap ] || return 0
        find /run/ved/idmap -maxdepth 1 -type f -name '[0-9]*' -print0 |
                xargs -0 -r awk -v i="$INSTANCE" '$3 == i { print FILENAME; nextfile }'
}

cleanup()
{
        local rc=$? pid

        trap - EXIT INT TERM
        for pid in "${BG_PIDS[@]}"; do
                kill "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        done
        # A test that made things on the host defines test_cleanup to remove them.
        if declare -F test_cleanup >/dev/null; then
                test_cleanup
        fi
        instance_cleanup
        if [ "$FINISHED" != 1 ]; then
                end_case
                N_FAILED=$((N_FAILED + 1))
                echo "   the test script stopped early (status $rc)"
                echo
                echo "$N_PASSED passed, $N_FAILED failed"
                rc=1
        fi
        if [ "$N_FAILED" -gt 0 ] && [ -f "$VED_LOG" ]; then
                echo "--- last lines of the daemon's log ($VED_LOG):"
                tail -n 40 "$VED_LOG" | sed 's/^/  | /'
        fi
        if [ "${VED_KEEP_TMP:-0}" = 1 ]; then
                echo "kept $T"
        else
                rm -rf "$T"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# promtool_path: prints the path of Prometheus's promtool, taken once from Debian's
# prometheus package into $BUILD/tools (the package itself is not installed: it
# would start a Prometheus server).
promtool_path()
{
        local dir=$BUILD/tools deb

        if [ ! -x "$dir/promtool" ]; then
                mkdir -p "$dir/deb" || return 1
                (cd "$dir/deb" && apt-get download prometheus >/dev/null 2>&1) || {
                        apt-get update -qq >/dev/null 2>&1
                        (cd "$dir/deb" && apt-get download prometheus >/dev/null 2>&1)
                }
                deb=$(ls "$dir"/deb/prometheus_*.deb 2>/dev/null | head -n1)
                [ -n "$deb" ] || return 1
                dpkg-deb -x "$deb" "$dir/deb/x" && cp "$dir/deb/x/usr/bin/promtool" "$dir/promtool"
                rm -rf "$dir/deb"
        fi
        echo "$dir/promtool"
}
