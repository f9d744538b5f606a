#!/usr/bin/env bash
# vectl exec and vectl enter over ved's streaming exec protocol (Upgrade:
# ved-exec/1) against a real VE: stdout and stderr kept apart, stdin, the
# command's exit status as vectl's, a command that cannot run, options after
# CTID left to the command, large output and input, --tty, the refusals (unknown
# VE, stopped VE), a daemon that goes away mid-session, and an interactive enter
# driven through tmux (prompt, terminal size and its changes, exit status, the
# local terminal restored). vectl console over the same stream: input to and
# output from /dev/console, two clients at once, Esc . through tmux, the end when
# the VE stops, the console log (GET), the refusals. Needs root and tmux.
#
#   bash tests/integration/test_exec.sh      (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=ex$(($$ % 100000))
TMUX_SESSION=vedexec$$
CTID=101

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi
if ! command -v tmux >/dev/null; then
        echo "tests need tmux: apt-get install tmux" >&2
        exit 1
fi

test_cleanup()
{
        tmux kill-session -t "$TMUX_SESSION" 2>/dev/null
        ves_teardown_all
}

# run_exec ARGS...: vectl ARGS with stdin from /dev/null unless redirected by the
# caller; sets RC, OUT and ERR. Bounded, so a hanging session fails the case.
run_exec()
{
        timeout -s KILL 60 "$VECTL_BIN" --socket "$SOCK" "$@" >"$T/out" 2>"$T/err"
        RC=$?
        OUT=$(cat "$T/out")
        ERR=$(cat "$T/err")
}

# pane_has TEXT: the tmux pane shows TEXT.
pane_has()
{
        tmux capture-pane -p -t "$TMUX_SESSION" | grep -qF -- "$1"
}

ved_start || exit 1
ensure_template || exit 1

begin_case "a running VE to exec into"
check "vectl create" vectl create "$CTID" --ostemplate "$TEMPLATE"
check "vectl start" vectl start "$CTID"
assert_eq "$(ve_state "$CTID")" running "state"

begin_case "stdout and stderr apart, exit status is vectl's"
run_exec exec "$CTID" sh -c 'echo out; echo err >&2; exit 7' </dev/null
assert_eq "$RC" 7 "exit code"
assert_eq "$OUT" out "stdout"
assert_eq "$ERR" err "stderr"
run_exec exec "$CTID" false </dev/null
assert_eq "$RC" 1 "exit code of false"
run_exec exec "$CTID" true </dev/null
assert_eq "$RC" 0 "exit code of true"
run_exec exec "$CTID" sh -c 'kill -9 $$' </dev/null
assert_eq "$RC" 137 "exit code of a command killed by SIGKILL"

begin_case "stdin reaches the command, and its end too"
RC=0
OUT=$(echo hello | timeout -s KILL 60 "$VECTL_BIN" --socket "$SOCK" exec "$CTID" cat) || RC=$?
assert_eq "$RC" 0 "exit code"
assert_eq "$OUT" hello "cat's output"
run_exec exec "$CTID" cat </dev/null
assert_eq "$RC" 0 "cat with stdin /dev/null ends"
assert_eq "$OUT" "" "cat's output of /dev/null"

begin_case "a command that cannot run exits as in a shell: 127 not found, 126 not executable"
run_exec exec "$CTID" nosuchcmd </dev/null
assert_eq "$RC" 127 "exit code of a missing command"
assert_match "$ERR" "nosuchcmd: No such file or directory" "message"
run_exec exec "$CTID" /etc/passwd </dev/null
assert_eq "$RC" 126 "exit code of a file that is not executable"
assert_match "$ERR" "/etc/passwd: Permission denied" "message"
run_exec exec --tty "$CTID" /no/such/dir/cmd </dev/null
assert_eq "$RC" 127 "exit code of a missing command on a pty"
api POST "/v1/ves/$CTID/exec" '{"command":["nosuchcmd"]}'
assert_status 200
assert_json .exit_code 127
assert_match "$(jq -r .stderr <<<"$BODY")" "nosuchcmd" "stderr of the plain mode"

begin_case "what follows CTID is the command's, options and -- included"
run_exec exec "$CTID" sh -c 'echo "$@"' sh -t --help -x </dev/null
assert_eq "$RC" 0 "exit code"
assert_eq "$OUT" "-t --help -x" "arguments"
run_exec exec "$CTID" -- ls -d /bin </dev/null
assert_eq "$OUT" /bin "command after --"
run_exec exec "$CTID" </dev/null
assert_eq "$RC" 2 "exit code without a command"
run_exec exec --bogus "$CTID" true </dev/null
assert_eq "$RC" 2 "exit code of an unknown option"

begin_case "one argument that is a shell command line runs in the VE's sh -c, as with vzctl"
run_exec exec "$CTID" 'echo one; echo two >&2; exit 3' </dev/null
assert_eq "$RC" 3 "exit code"
assert_eq "$OUT" one "stdout"
assert_eq "$ERR" two "stderr"
run_exec exec "$CTID" 'echo kept > /tmp/shline && cat /tmp/shline' </dev/null
assert_eq "$OUT" kept "redirection and &&"
run_exec exec "$CTID" echo 'a  b;c' </dev/null
assert_eq "$OUT" "a  b;c" "several arguments are passed as they are"

begin_case "large output and input arrive whole"
OUT=$("$VECTL_BIN" --socket "$SOCK" exec "$CTID" sh -c 'yes | head -c 5000000' \
        </dev/null 2>/dev/null | wc -c)
assert_eq "$OUT" 5000000 "bytes of output"
head -c 3000000 /dev/urandom >"$T/random"
"$VECTL_BIN" --socket "$SOCK" exec "$CTID" cat <"$T/random" >"$T/random.back"
assert_eq "$?" 0 "exit code of cat"
check "3 MB of random bytes through cat come back the same" cmp -s "$T/random" "$T/random.back"

begin_case "flow control: floods of output or of input do not grow the daemon, and end"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$VED_PID/status"; }
("$VECTL_BIN" --socket "$SOCK" exec "$CTID" cat /dev/zero | sleep 4) >/dev/null 2>&1 &
FLOOD=$!
sleep 3
RSS=$(rss_kb)
check "daemon RSS with a command writing to a client that does not read: ${RSS} kB" test "$RSS" -lt 102400
wait "$FLOOD"
# busybox ps shows a zombie as [cat], a live one as "cat /dev/zero".
no_zombie()
{
        local ps
        ps=$("$VECTL_BIN" --socket "$SOCK" exec "$CTID" ps 2>/dev/null)
        [[ $ps == *PID* ]] && ! grep -Eq '\[cat\]|cat /dev/zero' <<<"$ps"
}
check "the command the client left is killed and reaped (no zombie in the VE)" wait_until 5 no_zombie
head -c 60000000 /dev/zero >"$T/zeros"
timeout 30 "$VECTL_BIN" --socket "$SOCK" exec "$CTID" sh -c 'sleep 2; exit 3' <"$T/zeros"
assert_eq "$?" 3 "a command that never reads its 60 MB of stdin: its exit status"
head -c 20000000 /dev/urandom >"$T/random20"
timeout 30 "$VECTL_BIN" --socket "$SOCK" exec "$CTID" cat <"$T/random20" >"$T/random20.back"
assert_eq "$?" 0 "cat echoing 20 MB"
check "what cat echoed is what went in" cmp -s "$T/random20" "$T/random20.back"
OUT=$("$VECTL_BIN" --socket "$SOCK" exec "$CTID" cat /dev/zero 2>/dev/null | head -c 50000000 | wc -c)
assert_eq "$OUT" 50000000 "50 MB read by a pipe that then closes"
# Input faster than the command reads it: the daemon stops reading the client
# instead of keeping it all (it held the whole 300 MB before).
(head -c 300000000 /dev/zero | timeout 60 "$VECTL_BIN" --socket "$SOCK" exec "$CTID" \
        sh -c 'sleep 4; wc -c' >"$T/slow.out" 2>&1) &
SLOW=$!
sleep 3
RSS=$(rss_kb)
check "daemon RSS while a client sends 300 MB to a command that does not read yet: ${RSS} kB" \
        test "$RSS" -lt 102400
wait "$SLOW"
assert_eq "$(tr -d ' ' <"$T/slow.out")" 300000000 "bytes the command read, all of them"
api GET /v1/host
assert_status 200 "the daemon still answers"
# vectl's side: a command that prints 200 MB and never reads its stdin, fed more
# than the stream takes. vectl goes on printing while its input waits (it read
# the output into memory, unprinted, until the send was done: the whole 200 MB).
head -c 300000000 /dev/zero |
        timeout 60 "$VECTL_BIN" --socket "$SOCK" exec "$CTID" sh -c 'yes | head -c 200000000' \
        >/dev/null 2>&1 &
VPID=$! # timeout's; vectl is its child
MAX=0
while kill -0 "$VPID" 2>/dev/null; do
        read -r CHILD _ <"/proc/$VPID/task/$VPID/children" 2>/dev/null
        RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/${CHILD:-0}/status" 2>/dev/null)
        [ -n "$RSS" ] && [ "$RSS" -gt "$MAX" ] && MAX=$RSS
        sleep 0.05
done
wait "$VPID"
assert_eq "$?" 0 "exit status of the command that printed 200 MB"
check "vectl's RSS while its input waits and output flows: at most ${MAX} kB" \
        test "$MAX" -gt 0 -a "$MAX" -lt 51200
# A client that leaves while ved is not reading it (its command's stdin is
# full): the command is killed then, not when it ends on its own.
"$VECTL_BIN" --socket "$SOCK" exec "$CTID" sh -c 'sleep 300' <"$T/zeros" >/dev/null 2>&1 &
VPID=$!
sleeping() { "$VECTL_BIN" --socket "$SOCK" exec "$CTID" ps 2>/dev/null | grep -q 'sleep 300'; }
gone() { ! sleeping; }
check "the command runs, its stdin full" wait_until 5 sleeping
kill -KILL "$VPID"
wait "$VPID" 2>/dev/null
check "the command of the client that left is killed" wait_until 5 gone

begin_case "--tty: a pty, all of its output"
run_exec exec --tty "$CTID" sh -c 'tty; echo err >&2' </dev/null
assert_eq "$RC" 0 "exit code"
assert_match "$OUT" "^/dev/pts/[0-9]+" "tty"
assert_match "$OUT" "err" "stderr merged into the pty"
assert_eq "$ERR" "" "vectl's stderr"
for i in 1 2 3; do
        OUT=$("$VECTL_BIN" --socket "$SOCK" exec -t "$CTID" sh -c 'head -c 2000000 /dev/zero' \
                </dev/null | wc -c)
        assert_eq "$OUT" 2000000 "bytes through the pty (run $i)"
done
run_exec exec -t "$CTID" sh -c 'exit 5' </dev/null
assert_eq "$RC" 5 "exit code with a tty"

begin_case "enter: an interactive shell through tmux"
tmux new-session -d -s "$TMUX_SESSION" -x 100 -y 30 \
        "$(printf '%q ' "$VECTL_BIN" --socket "$SOCK" enter "$CTID"); echo vectl-exit=\$?; \
stty -a | grep -qw -- -icanon && echo terminal=raw || echo terminal=cooked; sleep 600"
check "the shell's prompt" wait_until 15 pane_has '#'
tmux send-keys -t "$TMUX_SESSION" 'echo hi-$((6*7)); stty size' Enter
check "a command's output" wait_until 10 pane_has 'hi-42'
check "the pane's size" wait_until 10 pane_has '30 100'
tmux resize-window -t "$TMUX_SESSION" -x 90 -y 25 2>/dev/null ||
        tmux resize-pane -t "$TMUX_SESSION" -x 90 -y 25
sleep 0.5
tmux send-keys -t "$TMUX_SESSION" 'stty size' Enter
check "the new size after a resize" wait_until 10 pane_has '25 90'
tmux send-keys -t "$TMUX_SESSION" 'exit 3' Enter
check "vectl exits with the shell's status" wait_until 15 pane_has 'vectl-exit=3'
check "the local terminal is back in cooked mode" wait_until 5 pane_has 'terminal=cooked'
if ! pane_has 'vectl-exit=3'; then
        tmux capture-pane -p -t "$TMUX_SESSION" | sed 's/^/  | /'
fi
tmux kill-session -t "$TMUX_SESSION" 2>/dev/null

# console_reader: a process of the VE reads a line from /dev/console and
# answers "got:LINE" on it.
console_reader()
{
        vectl exec "$CTID" '(read line < /dev/console; echo "got:$line" > /dev/console) </dev/null >/dev/null 2>&1 &'
}

begin_case "console: what is typed reaches /dev/console, the VE's answer comes back"
check "a VE process reads its console" console_reader
run_exec console "$CTID" < <(sleep 1; echo typed-line; sleep 2)
assert_eq "$RC" 0 "exit code (the end of input detaches)"
assert_match "$OUT" "got:typed-line" "the VE's answer on the console"
assert_match "$ERR" "Detached from the console" "message"
assert_match "$(curl -s --unix-socket "$SOCK" "http://ved/v1/ves/$CTID/console")" \
        "got:typed-line" "GET /v1/ves/$CTID/console: the log"
assert_eq "$(curl -s --unix-socket "$SOCK" "http://ved/v1/ves/$CTID/console?tail=5" | od -An -c | tr -d ' ')" \
        'ine\r\n' "the log's last 5 bytes (?tail=5)"

begin_case "console: the log's older part (console.log.1, past 1 MiB) comes first"
LOG=$STATE_DIR/ves/$CTID/console.log
printf 'older-part\n' >"$LOG.1"
SIZE=$(stat -c %s "$LOG")
GOT=$(curl -s --unix-socket "$SOCK" "http://ved/v1/ves/$CTID/console")
assert_eq "${GOT:0:10}" "older-part" "the whole log begins with console.log.1"
assert_match "$GOT" "got:typed-line" "and goes on with console.log"
assert_eq "${#GOT}" "$((SIZE + 10))" "its length: both files (less the newline \$() drops)"
assert_eq "$(curl -s --unix-socket "$SOCK" "http://ved/v1/ves/$CTID/console?tail=$((SIZE + 5))" |
        head -c 5)" "part" "?tail past console.log reaches into console.log.1"
assert_eq "$(curl -s --unix-socket "$SOCK" "http://ved/v1/ves/$CTID/console?tail=5" | od -An -c | tr -d ' ')" \
        'ine\r\n' "?tail within console.log: console.log only"
rm -f "$LOG.1"

begin_case "console: two clients attached at once both see the output"
(sleep 6) | timeout -s KILL 30 "$VECTL_BIN" --socket "$SOCK" console "$CTID" >"$T/c1" 2>&1 &
bg_track $!
(sleep 6) | timeout -s KILL 30 "$VECTL_BIN" --socket "$SOCK" console "$CTID" >"$T/c2" 2>&1 &
bg_track $!
sleep 1.5
check "the VE writes to its console" vectl exec "$CTID" 'echo to-both > /dev/console'
check "the first client got it" wait_until 5 grep -q to-both "$T/c1"
check "the second client got it" wait_until 5 grep -q to-both "$T/c2"

begin_case "console: vectl stays attached through a restart of the VE, to its new console"
(sleep 12) | timeout -s KILL 40 "$VECTL_BIN" --socket "$SOCK" console "$CTID" >"$T/c4" 2>&1 &
pid=$!
bg_track "$pid"
sleep 1
check "vectl restart" vectl restart "$CTID"
check "the new console is attached" wait_until 10 grep -q "attached to its new console" "$T/c4"
check "the VE writes to its new console" vectl exec "$CTID" 'echo after-restart > /dev/console'
check "the client got it" wait_until 5 grep -q after-restart "$T/c4"
wait "$pid"
assert_eq "$?" 0 "exit code at the end of input"
assert_match "$(cat "$T/c4")" "Detached from the console" "its message"

begin_case "console: Esc . detaches an interactive session; the VE keeps running"
tmux new-session -d -s "$TMUX_SESSION" -x 100 -y 30 \
        "$(printf '%q ' "$VECTL_BIN" --socket "$SOCK" console "$CTID"); echo vectl-exit=\$?; \
stty -a | grep -qw -- -icanon && echo terminal=raw || echo terminal=cooked; sleep 600"
check "the banner" wait_until 10 pane_has 'Esc . to detach'
check "a VE process reads its console" console_reader
sleep 0.5
tmux send-keys -t "$TMUX_SESSION" 'from-tmux' Enter
check "the VE's answer" wait_until 10 pane_has 'got:from-tmux'
tmux send-keys -t "$TMUX_SESSION" Escape .
check "vectl detaches with 0" wait_until 10 pane_has 'vectl-exit=0'
check "the local terminal is back in cooked mode" wait_until 5 pane_has 'terminal=cooked'
assert_eq "$(ve_state "$CTID")" running "state"
tmux kill-session -t "$TMUX_SESSION" 2>/dev/null

# cpu_ticks PID: the process's user + system CPU time, in clock ticks.
cpu_ticks()
{
        awk '{ print $14 + $15 }' "/proc/$1/stat"
}

begin_case "console: a VE flooding its console is held to the console's rate, ved and ve-statfsd stay idle"
check "a VE process writes to its console without end" \
        vectl exec "$CTID" '(cat /dev/zero > /dev/console) </dev/null >/dev/null 2>&1 &'
sleep 1
t0=$(cpu_ticks "$VED_PID")
sleep 3
used=$(( $(cpu_ticks "$VED_PID") - t0 ))
tick=$(getconf CLK_TCK)
check "ved used $used ticks of CPU in 3 s of flood, under 0.5 s ($((tick / 2)))" \
        test "$used" -lt $((tick / 2))
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://ved/v1/ves/$CTID")" \
        200 "the API answers meanwhile"
ved_kill9
statfsd=$(head -1 "$STATE_DIR/statfsd.pid")
t0=$(cpu_ticks "$statfsd")
sleep 3
used=$(( $(cpu_ticks "$statfsd") - t0 ))
check "ve-statfsd, draining while ved is down, used $used ticks, under 0.5 s" \
        test "$used" -lt $((tick / 2))
check "the daemon starts again" ved_start
check "the flood ends" vectl exec "$CTID" 'killall cat'

begin_case "console: the refusals are clear errors"
api POST "/v1/ves/$CTID/console" '{}'
assert_status 400
assert_match "$(jq -r .error.message <<<"$BODY")" "Upgrade" "message without Upgrade"
run_exec console 4242 </dev/null
assert_eq "$RC" 4 "exit code for an unknown VE"
api GET "/v1/ves/$CTID/console?tail=-1"
assert_status 400

# ve_procs REGEX [WANT]: how many lines of ps in the VE match REGEX, once that is
# WANT (default 0), or after 3 s.
ve_procs()
{
        local n i

        for i in $(seq 30); do
                n=$("$VECTL_BIN" --socket "$SOCK" exec "$CTID" ps </dev/null 2>/dev/null |
                        grep -c -- "$1")
                [ "$n" = "${2:-0}" ] && break
                sleep 0.1
        done
        echo "$n"
}

begin_case "plain mode: the timeout ends the answer and kills the command's process group"
API_TIMEOUT=20 api POST "/v1/ves/$CTID/exec" \
        '{"command":["sh","-c","echo before; sleep 1011 | cat; echo never"],"timeout":1}'
assert_eq "$STATUS" 200 "status, answered long before the pipeline's end"
assert_eq "$(jq -r '.exit_code, .stdout' <<<"$BODY")" $'137\nbefore' "exit code and stdout"
assert_eq "$(ve_procs 'sleep 1011$')" 0 "the pipeline's sleep left in the VE"

begin_case "plain mode: a command that ended is answered at its timeout, not when its output closes"
API_TIMEOUT=20 api POST "/v1/ves/$CTID/exec" \
        '{"command":["sh","-c","echo hi; sleep 1014 & exit 3"],"timeout":1}'
assert_eq "$STATUS" 200 "status, with a background process holding stdout"
assert_eq "$(jq -r '.exit_code, .stdout' <<<"$BODY")" $'3\nhi' "the command's own exit code, stdout"
"$VECTL_BIN" --socket "$SOCK" exec "$CTID" sh -c 'kill $(pidof sleep)' </dev/null >/dev/null 2>&1

begin_case "vectl exec: SIGTERM goes to the command's process group; a second one ends vectl and the command"
"$VECTL_BIN" --socket "$SOCK" exec "$CTID" sh -c \
        'trap "echo got TERM; exit 9" TERM; sleep 1015 | cat; echo unreached' \
        </dev/null >"$T/out" 2>"$T/err" &
pid=$!
bg_track "$pid"
assert_eq "$(ve_procs 'sleep 1015$' 1)" 1 "the pipeline runs"
kill -TERM "$pid"
wait "$pid"
assert_eq "$?" 9 "vectl's exit code: the command's, after its trap"
assert_eq "$(cat "$T/out")" "got TERM" "the command's trap ran"
assert_eq "$(ve_procs 'sleep 1015$')" 0 "the pipeline's sleep left in the VE"
"$VECTL_BIN" --socket "$SOCK" exec "$CTID" sh -c 'trap "" TERM; sleep 1016 | cat' \
        </dev/null >/dev/null 2>&1 &
pid=$!
bg_track "$pid"
assert_eq "$(ve_procs 'sleep 1016$' 1)" 1 "a pipeline that ignores SIGTERM runs"
kill -TERM "$pid"
sleep 0.3
assert_eq "$(ve_procs 'sleep 1016$' 1)" 1 "it still runs after one SIGTERM"
kill -TERM "$pid"
wait "$pid"
assert_eq "$?" 143 "vectl's exit code after a second SIGTERM"
assert_eq "$(ve_procs 'sleep 1016$')" 0 "the pipeline's sleep left in the VE"

begin_case "vectl exec killed: the connection's end kills the command's process group"
"$VECTL_BIN" --socket "$SOCK" exec "$CTID" sh -c 'sleep 1017 | cat' </dev/null >/dev/null 2>&1 &
pid=$!
bg_track "$pid"
assert_eq "$(ve_procs 'sleep 1017$' 1)" 1 "the pipeline runs"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
assert_eq "$(ve_procs 'sleep 1017$')" 0 "the pipeline's sleep left in the VE"

begin_case "a change the guest refuses (no such user) writes none of its files"
BEFORE=$("$VECTL_BIN" --socket "$SOCK" exec "$CTID" cat /etc/hostname /etc/resolv.conf </dev/null 2>&1)
api PATCH "/v1/ves/$CTID" '{"hostname":"partial.example","nameserver":["192.0.2.53"],"userpasswd":"ghost:pw"}'
assert_error 400
assert_match "$(jq -r .error.message <<<"$BODY")" "ghost" "the message names the user"
assert_eq "$("$VECTL_BIN" --socket "$SOCK" exec "$CTID" cat /etc/hostname /etc/resolv.conf </dev/null 2>&1)" \
        "$BEFORE" "the guest's /etc/hostname and /etc/resolv.conf"
assert_eq "$("$VECTL_BIN" --socket "$SOCK" exec "$CTID" hostname </dev/null 2>&1)" \
        "$(head -1 <<<"$BEFORE")" "the VE's hostname"

begin_case "an unknown VE is 4"
run_exec exec 4242 true </dev/null
assert_eq "$RC" 4 "exit code"
assert_match "$ERR" "4242" "message"

begin_case "the daemon going away mid-session: connection lost, 1"
"$VECTL_BIN" --socket "$SOCK" exec "$CTID" sleep 30 </dev/null >"$T/out" 2>"$T/err" &
pid=$!
bg_track "$pid"
sleep 1
ved_kill9
wait "$pid"
assert_eq "$?" 1 "exit code"
assert_match "$(cat "$T/err")" "connection to ved lost" "message"
check "the daemon starts again" ved_start

begin_case "console: an attached client is told when the VE stops, and exits 0"
(sleep 60) | timeout -s KILL 60 "$VECTL_BIN" --socket "$SOCK" console "$CTID" >"$T/c3" 2>&1 &
pid=$!
bg_track "$pid"
sleep 1

begin_case "exec into a stopped VE is 5 with the daemon's message"
check "vectl stop" vectl stop "$CTID"
wait "$pid"
assert_eq "$?" 0 "exit code of the attached console"
assert_match "$(cat "$T/c3")" "The console closed: the VE stopped" "its message"
assert_match "$(cat "$T/c3")" "Requesting system halt" "the VE's last console output"
run_exec exec "$CTID" true </dev/null
assert_eq "$RC" 5 "exit code"
assert_match "$ERR" "not running" "message"
run_exec enter "$CTID" </dev/null
assert_eq "$RC" 5 "exit code of enter"
run_exec console "$CTID" </dev/null
assert_eq "$RC" 5 "exit code of console"
assert_match "$ERR" "not running" "console's message"

begin_case "destroy leaves nothing on the host"
check "vectl destroy" vectl destroy "$CTID"
assert_eq "$(host_leftovers)" "" "leftovers"

finish
