#!/usr/bin/env bash
# A Debian 12 VE as a hosting customer gets it: the template built by its recipe
# (vectl template build debian-12, cached under $VED_BUILD/cache), systemd booting
# as PID 1 in an unprivileged VE until `systemctl is-system-running` says running,
# journald, logind and sshd up, the guest configured by the host (hostname, DNS,
# network file, password, ssh key), the customer's own lines kept, the hostname
# changed live, a login on its console (vectl console), a clean stop by SIGRTMIN+3
# within seconds; the secrets never stored;
# bad input refused; a busybox VE still working next to it. Needs root.
#
#   bash tests/integration/test_debian.sh      (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=db$(($$ % 100000))
CT=301
BB=302
LY=303
PASSWORD='Tr0ub4dor&3 horse'
KEYDIR=$T/keys

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi

test_cleanup()
{
        ves_teardown_all
}

ve_running_state()
{
        [ "$(ve_state "$1")" = "$2" ]
}

ved_start || { fail "the daemon starts"; finish; }

begin_case "vectl template build debian-12 (or the cached tarball) gives debian-12-x86_64"
if ensure_debian_template; then
        api GET "/v1/templates/$DEBIAN_TEMPLATE"
        assert_status 200
        assert_json .distro debian
        assert_json .release 12
        assert_json .arch x86_64
        check "the tarball is cached in $BUILD/cache" test -s "$BUILD/cache/$DEBIAN_TEMPLATE.tar.zst"
else
        fail "the Debian template is there"
        finish
fi

begin_case "template build refuses what it cannot build"
api POST /v1/templates/build '{"name":"nosuchdistro-1"}'
assert_error 404
api POST /v1/templates/build '{"name":"debian-12-aarch64"}'
[ "$(uname -m)" = aarch64 ] || assert_error 400
api POST /v1/templates/build '{"name":"../etc-1"}'
assert_error 400
api POST /v1/templates/build "{\"name\":\"debian-12\"}"
assert_error 409
api POST /v1/templates/build '{"name":"debian-12","recipe":"/bin/sh"}'
assert_error 400

begin_case "create with hostname, DNS, address, password and ssh key"
mkdir -p "$KEYDIR"
ssh-keygen -q -t ed25519 -N '' -C test@ved -f "$KEYDIR/id" </dev/null >/dev/null
START=$(date +%s.%N)
OUT=$(vectl create "$CT" --ostemplate "$DEBIAN_TEMPLATE" --hostname web1.example.com \
        --nameserver 192.0.2.53 --nameserver 198.51.100.53 --searchdomain example.com \
        --ipadd 10.199.0.5 --userpasswd "root:$PASSWORD" --ssh-key "$KEYDIR/id.pub" 2>&1)
assert_eq "$?" 0 "vectl create: $OUT"
echo "   create took $(echo "$(date +%s.%N) - $START" | bc) s"
api GET "/v1/ves/$CT"
assert_json .state stopped
check "no password or key in the answer" bash -c "! grep -qE 'userpasswd|ssh_key|horse' <<<'$BODY'"

begin_case "bad secrets are refused with 400 and change nothing"
api PATCH "/v1/ves/$CT" '{"userpasswd":"no-colon"}'
assert_error 400
api PATCH "/v1/ves/$CT" '{"userpasswd":"root:"}'
assert_error 400
api PATCH "/v1/ves/$CT" '{"ssh_key":"not a key"}'
assert_error 400
api PATCH "/v1/ves/$CT" '{"ssh_key":42}'
assert_error 400
api PATCH "/v1/ves/$CT" '{"nameserver":["inherit","300.1.1.1"]}'
assert_error 400
api PATCH "/v1/ves/$CT" '{"userpasswd":"nosuchuser:pw"}'
assert_error 400
api POST /v1/ves "{\"ctid\":$((CT + 10)),\"ostemplate\":\"$DEBIAN_TEMPLATE\",\"userpasswd\":\"x\"}"
assert_error 400

begin_case "systemd boots as PID 1 to 'running' within 60 s"
start_systemd_ve "$CT"
ve_run "$CT" sh -c 'readlink /proc/1/exe; cat /run/systemd/container; systemd-detect-virt'
assert_match "$OUT" 'systemd' "init's binary"
assert_match "$OUT" 'ved' "container name"
ve_run "$CT" cat /proc/self/uid_map
assert_match "$OUT" '^ *0 +[1-9][0-9]* +65536' "unprivileged: root is mapped"
ve_run "$CT" systemctl is-active systemd-journald systemd-logind ssh
assert_eq "$OUT" $'active\nactive\nactive' "journald, logind, sshd"
ve_run "$CT" ss -ltn
assert_match "$OUT" ':22 ' "sshd listens"
ve_run "$CT" sh -c 'cat /proc/self/cgroup | grep name=systemd; test -w /sys/fs/cgroup/systemd && echo W; test -w /sys/fs/cgroup/memory || echo RO'
assert_match "$OUT" 'name=systemd:/' "own name=systemd subtree"
assert_match "$OUT" 'W' "name=systemd writable"
assert_match "$OUT" 'RO' "controllers read-only"

begin_case "the guest is configured as asked"
ve_run "$CT" hostname
assert_eq "$OUT" web1.example.com "hostname"
ve_run "$CT" cat /etc/hostname
assert_eq "$OUT" web1.example.com "/etc/hostname"
ve_run "$CT" cat /etc/hosts
assert_match "$OUT" $'127.0.1.1\tweb1.example.com web1' "/etc/hosts"
ve_run "$CT" cat /etc/resolv.conf
assert_match "$OUT" $'nameserver 192.0.2.53\nnameserver 198.51.100.53\nsearch example.com' "resolv.conf"
ve_run "$CT" cat /etc/network/interfaces
assert_match "$OUT" 'iface eth0 inet manual' "ifupdown leaves eth0 alone"
assert_match "$OUT" '10.199.0.5/32' "the addresses named"
ve_run "$CT" ip -4 -o addr show eth0
assert_match "$OUT" '10.199.0.5/32' "eth0 keeps its address after ifupdown ran"
ve_run "$CT" systemctl is-active networking
assert_eq "$OUT" active "networking.service"
ve_run "$CT" sh -c 'grep "^root:" /etc/shadow | cut -d: -f2'
HASH=$OUT
assert_match "$HASH" '^\$(y|6)\$' "root's password is hashed"
assert_eq "$(python3 -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])' \
        "$PASSWORD" "$HASH" 2>/dev/null)" True "the hash is of the password"
ve_run "$CT" cat /root/.ssh/authorized_keys
check "root's authorized_keys holds the key" grep -qF "$(cut -d' ' -f2 "$KEYDIR/id.pub")" <<<"$OUT"
ve_run "$CT" stat -c '%a %U' /root/.ssh /root/.ssh/authorized_keys
assert_eq "$OUT" $'700 root\n600 root' "modes of .ssh"
ve_run "$CT" sh -c 'cat /etc/machine-id; ls /etc/ssh/ssh_host_ed25519_key'
assert_match "$OUT" '^[0-9a-f]{32}' "a machine id of its own"

begin_case "an ssh login with the key works"
if timeout 20 ssh -i "$KEYDIR/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR root@10.199.0.5 hostname \
        >"$T/ssh.out" 2>&1; then
        assert_eq "$(cat "$T/ssh.out")" web1.example.com "hostname over ssh"
        # sshd's session runs under the VE's init: its df shows the 2G diskspace.
        OUT=$(timeout 20 ssh -i "$KEYDIR/id" -o StrictHostKeyChecking=no \
                -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \
                root@10.199.0.5 df -k --output=size / 2>&1 | tail -n 1 | tr -d " ")
        assert_eq "$OUT" 2097152 "df -k / over ssh (KiB)"
else
        fail "ssh root@10.199.0.5: $(tail -n 3 "$T/ssh.out")"
fi

begin_case "the secrets are nowhere in the database or the log"
sqlite3 "$STATE_DIR/ved.db" .dump >"$T/db.dump" 2>/dev/null
check "password not in the database" bash -c "! grep -qF 'horse' '$T/db.dump'"
check "password not in the log" bash -c "! grep -qF 'horse' '$VED_LOG'"
check "hash not in the database" bash -c "! grep -qF '${HASH:10:20}' '$T/db.dump'"
check "key not in the database" bash -c "! grep -qF '$(cut -d' ' -f2 "$KEYDIR/id.pub")' '$T/db.dump'"

begin_case "the customer's own lines survive the host's changes"
ve_run "$CT" sh -c 'echo "options edns0" >> /etc/resolv.conf; echo "10.1.1.1 mine" >> /etc/hosts'
OUT=$(vectl set "$CT" --nameserver 203.0.113.9 --hostname live.example.org 2>&1)
assert_eq "$?" 0 "vectl set: $OUT"
ve_run "$CT" cat /etc/resolv.conf
assert_match "$OUT" 'nameserver 203.0.113.9' "new nameserver"
assert_match "$OUT" 'options edns0' "the customer's option"
check "old nameserver gone" bash -c "! grep -q 192.0.2.53 <<<'$OUT'"
ve_run "$CT" grep -c 'BEGIN ved dns' /etc/resolv.conf
assert_eq "$OUT" 1 "one ved block"
ve_run "$CT" cat /etc/hosts
assert_match "$OUT" '10.1.1.1 mine' "the customer's host line"

begin_case "vectl set --hostname is live on a running VE"
ve_run "$CT" hostname
assert_eq "$OUT" live.example.org "hostname in the UTS namespace"
ve_run "$CT" cat /etc/hostname
assert_eq "$OUT" live.example.org "/etc/hostname"
ve_run "$CT" hostnamectl hostname
assert_eq "$OUT" live.example.org "hostnamectl"

begin_case "vectl set --userpasswd and --ssh-key on a running VE"
OUT=$(vectl set "$CT" --userpasswd 'root:second pw' --ssh-key "$(cat "$KEYDIR/id.pub")" 2>&1)
assert_eq "$?" 0 "vectl set: $OUT"
ve_run "$CT" sh -c 'grep "^root:" /etc/shadow | cut -d: -f2'
assert_ne "$OUT" "$HASH" "a new hash"
assert_eq "$(python3 -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])' \
        'second pw' "$OUT" 2>/dev/null)" True "the new hash is of the new password"

begin_case "vectl enter gives a Debian VE's root a login bash"
# script(1) gives vectl a terminal and feeds it the lines.
(sleep 1; printf 'echo shell=$0 home=$HOME\nexit 5\n'; sleep 1) |
        timeout 20 script -qec "$(printf '%q ' "$VECTL_BIN" --socket "$SOCK" enter "$CT")" \
        /dev/null >"$T/enter.out"
assert_eq "${PIPESTATUS[1]}" 5 "vectl enter's exit status (the shell's)"
assert_match "$(tr -d '\r' <"$T/enter.out")" 'shell=/bin/bash home=/root' "the shell and its HOME"

begin_case "vectl console: a root login on the console's getty, a command, a logout, Esc . detaches"
(sleep 1; printf '\r'; sleep 1.5; printf 'root\r'; sleep 1.5; printf 'second pw\r'; sleep 3
        printf 'echo console-$((6*7)); tty\r'; sleep 1.5; printf 'exit\r'; sleep 2
        printf '\033.'; sleep 1) |
        timeout 30 script -qec "$(printf '%q ' "$VECTL_BIN" --socket "$SOCK" console "$CT")" \
        /dev/null >"$T/console.out"
assert_eq "${PIPESTATUS[1]}" 0 "vectl console's exit status"
OUT=$(tr -d '\r' <"$T/console.out")
assert_match "$OUT" 'login:' "the getty's prompt"
assert_match "$OUT" 'console-42' "a command's output"
assert_match "$OUT" '/dev/console' "its terminal"
assert_match "$OUT" 'logout' "the logout"
assert_match "$OUT" 'Detached from the console' "the detach"
check "the VE still runs" ve_running_state "$CT" running

begin_case "vectl list shows the space the VE really uses on the host"
OUT=$(vectl list -H -o ctid,diskspace 2>&1)
assert_match "$OUT" "$CT" "listed"
api GET "/v1/ves/$CT/usage"
HOST_BYTES=$(jqb '.disk.host_bytes // empty')
IMG_BLOCKS=$(($(stat -c %b "$STATE_DIR/ves/$CT/root.img") * 512))
if [ -n "$HOST_BYTES" ]; then
        check "host bytes ($HOST_BYTES) are the image's allocated blocks, well below 2G" \
                test "$HOST_BYTES" -gt 100000000 -a "$HOST_BYTES" -lt 1500000000
else
        check "the image is sparse ($IMG_BLOCKS bytes allocated)" \
                test "$IMG_BLOCKS" -gt 100000000 -a "$IMG_BLOCKS" -lt 1500000000
fi

begin_case "vectl stop halts systemd cleanly (SIGRTMIN+3) in under 10 s"
stop_systemd_ve "$CT"
assert_eq "$(host_leftovers "$CT")" "" "what the stopped VE holds on the host"

begin_case "after a restart of the VE the journal shows the clean shutdown"
vectl start "$CT" >/dev/null 2>&1
wait_until 60 systemd_running "$CT" || fail "running again"
ve_run "$CT" sh -c 'journalctl --no-pager -q | grep -E "systemd\[1\]: (Shutting down|Reached target .*Power-Off|Reached target .*System Halt)" | tail -1'
assert_match "$OUT" 'Shutting down|Power-Off|Halt' "systemd's own shutdown"
vectl stop "$CT" >/dev/null 2>&1

begin_case "a password set on a stopped VE is written into its image"
OUT=$(vectl set "$CT" --userpasswd 'root:third pw' 2>&1)
assert_eq "$?" 0 "vectl set on a stopped VE: $OUT"
assert_eq "$(host_leftovers "$CT")" "" "nothing left mounted"
vectl start "$CT" >/dev/null 2>&1
ve_run "$CT" sh -c 'grep "^root:" /etc/shadow | cut -d: -f2'
assert_eq "$(python3 -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])' \
        'third pw' "$OUT" 2>/dev/null)" True "the password of the stopped VE"
vectl stop "$CT" >/dev/null 2>&1

begin_case "a busybox VE still works next to it"
if ensure_template; then
        OUT=$(vectl create "$BB" --ostemplate busybox --hostname bb.example --nameserver inherit 2>&1)
        assert_eq "$?" 0 "create busybox: $OUT"
        OUT=$(vectl start "$BB" 2>&1)
        assert_eq "$?" 0 "start busybox: $OUT"
        wait_until 10 ve_running_state "$BB" running || fail "busybox running"
        ve_run "$BB" sh -c 'cat /proc/1/comm; hostname; ls /run/rcS.done; grep -c nameserver /etc/resolv.conf'
        assert_match "$OUT" $'^init\nbb.example\n/run/rcS.done\n[1-9]' "busybox init, hostname, boot marker, inherited DNS"
        OUT=$(vectl stop "$BB" 2>&1)
        assert_eq "$?" 0 "stop busybox: $OUT"
        OUT=$(vectl destroy "$BB" 2>&1)
        assert_eq "$?" 0 "destroy busybox: $OUT"
else
        fail "the busybox template is there"
fi

begin_case "a layered Debian VE: systemd runs on the template shared read-only"
OUT=$(vectl create "$LY" --ostemplate "$DEBIAN_TEMPLATE" --layout layered --hostname ly.example \
        --diskspace 2G 2>&1)
assert_eq "$?" 0 "create --layout layered: $OUT"
# Its own image holds an empty ext4, not the 179 MB of the template's files.
check "the layered VE's image takes under 10 MB on the host" \
        test "$(du -k "$STATE_DIR/ves/$LY/root.img" | cut -f1)" -lt 10240
start_systemd_ve "$LY"
ve_run "$LY" sh -c 'hostname; df -k / | tail -n1'
assert_match "$OUT" $'^ly.example\n[^ ]+ +2097152 ' "hostname and df's size (2G)"
OUT=$(vectl stop "$LY" 2>&1 && vectl destroy "$LY" 2>&1)
assert_eq "$?" 0 "stop and destroy: $OUT"
# VE $CT has a copy of its own: removing the template takes its layer away too.
OUT=$(vectl template remove "$DEBIAN_TEMPLATE" 2>&1)
assert_eq "$?" 0 "template remove once no layered VE uses it: $OUT"
check "the template's layer is unmounted" \
        bash -c "! findmnt '$STATE_DIR/templates/$DEBIAN_TEMPLATE.layer' >/dev/null"

begin_case "destroy leaves nothing on the host"
OUT=$(vectl destroy "$CT" 2>&1)
assert_eq "$?" 0 "destroy: $OUT"
assert_eq "$(host_leftovers)" "" "loop devices, mounts, cgroups"

finish
