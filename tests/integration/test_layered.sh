#!/usr/bin/env bash
# Layered VEs (--layout layered, ve/layer.h): the template's image mounted once,
# read-only, and shared; each VE's own image holds only its changes, with guest
# ids on disk. Create copies nothing of the template; the VE's root is an overlay;
# what one VE writes neither the other nor the template sees; the template's
# page cache is shared; df shows the diskspace; the host writes (hostname, before
# init and live) land as the VE's root; stop, start and a kill -9 of ved keep it;
# the template cannot be removed while a layered VE uses it; destroy and the
# template's removal leave nothing. Needs root.
#
#   bash tests/integration/test_layered.sh      (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=ly$(($$ % 100000))

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (loop devices, mounts, cgroups, namespaces)"
        exit 0
fi

test_cleanup()
{
        ves_teardown_all
}

LAYER=
# layer_mounts: how many mounts the template's layer has.
layer_mounts()
{
        awk -v l="$LAYER" '$5 == l' /proc/self/mountinfo | wc -l
}

# mapped_kb CTID: file pages mapped by the VE's processes and charged to its
# memory cgroup, in KiB.
mapped_kb()
{
        local f=/sys/fs/cgroup/memory/$INSTANCE/$1/memory.stat key=mapped_file

        if [ ! -f "$f" ]; then
                f=/sys/fs/cgroup/$INSTANCE/$1/memory.stat
                key=file_mapped
        fi
        awk -v k="$key" '$1 == k { print int($2 / 1024) }' "$f"
}

ved_start || { fail "the daemon starts"; finish; }
TARBALL=$(template_tarball) || { fail "the busybox template builds"; finish; }
vectl template import "$TARBALL" --name busybox >/dev/null 2>&1 || fail "template import"
LAYER=$STATE_DIR/templates/busybox.layer
U201=$STATE_DIR/ves/201/private/upper

begin_case "create copies nothing of the template: through vectl and the API"
KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH+1at5lvzTmNiWMaCL3iYBFPA0EgHwiUR14vRQUy9x0 l@ved"
OUT=$(vectl create 201 --ostemplate busybox --layout layered --hostname l201.example.com \
        --diskspace 1G --ssh-key "$KEY" 2>&1)
assert_eq "$?" 0 "vectl create --layout layered ($OUT)"
api POST /v1/ves '{"ctid":202,"ostemplate":"busybox","layout":"layered"}'
assert_status 202
wait_op "$(op_id_from_location)" 60
assert_eq "$OP_STATUS" succeeded "the create operation of 202"
api GET /v1/ves/201
assert_json .layout layered
api GET /v1/ves/202
assert_json .layout layered
assert_match "$(vectl list -a -o ctid,layout 2>&1)" $'201 +layered\n +202 +layered' "vectl list -o layout"
OUT=$(vectl set 201 --layout image 2>&1)
assert_ne "$?" 0 "vectl set --layout ($OUT)"
api PATCH /v1/ves/201 '{"layout":"image"}'
assert_error 400
# The template's busybox alone is 1.9 MB; the VE's image holds an empty ext4.
check "201's image holds none of the template's files" \
        test "$(du -k "$STATE_DIR/ves/201/root.img" | cut -f1)" -lt \
        "$(du -k "$STATE_DIR/templates/busybox.img" | cut -f1)"

begin_case "a bad layout is refused, saying which"
OUT=$(vectl create 203 --ostemplate busybox --layout shared 2>&1)
assert_eq "$?" 6 "exit code of a bad layout, refused by ved ($OUT)"
assert_match "$OUT" "layout must be image or layered" "the message"
api GET /v1/ves/203
assert_status 404

begin_case "start: the template's image is mounted once, read-only; each root is an overlay"
for ct in 201 202; do
        OUT=$(vectl start $ct 2>&1)
        assert_eq "$?" 0 "vectl start $ct ($OUT)"
done
assert_eq "$(layer_mounts)" 1 "mounts of the template's layer"
assert_match "$(awk -v l="$LAYER" '$5 == l { print $6 }' /proc/self/mountinfo)" '(^|,)ro(,|$)' \
        "the layer's mount options"
assert_eq "$(findmnt -n -o FSTYPE "$STATE_DIR/ves/201/root")" overlay "the host's view of 201"
OUT=$(vectl exec 201 sh -c 'hostname; cat /proc/1/comm' 2>&1)
assert_eq "$OUT" $'l201.example.com\ninit' "hostname (written before init) and init in 201"
check "root's authorized_keys, written at create" \
        bash -c "$VECTL_BIN --socket $SOCK exec 201 cat /root/.ssh/authorized_keys | grep -qxF '$KEY'"
assert_eq "$(stat -c %u:%g "$U201/root/.ssh/authorized_keys" 2>&1)" 0:0 "its owner on 201's image"

begin_case "what a VE writes lands in its own image with guest ids; nobody else sees it"
INITTAB=$(vectl exec 202 wc -l /etc/inittab 2>&1)
OUT=$(vectl exec 201 sh -c 'echo hi > /root/f && mkdir /home/u && chown 65534:65534 /home/u &&
        echo "# 201" >> /etc/inittab && rm /bin/sleep' 2>&1)
assert_eq "$?" 0 "writes in 201 ($OUT)"
assert_eq "$(stat -c %u:%g "$U201/root/f" 2>&1)" 0:0 "owner of 201's /root/f on its image"
assert_eq "$(stat -c %u:%g "$U201/home/u" 2>&1)" 65534:65534 "owner of 201's /home/u on its image"
assert_eq "$(tail -n1 "$U201/etc/inittab" 2>&1)" "# 201" "201's inittab, copied up"
check "202 does not see /root/f" vectl exec 202 test ! -e /root/f
assert_eq "$(vectl exec 202 wc -l /etc/inittab 2>&1)" "$INITTAB" "202's inittab"
check "202 still has /bin/sleep" vectl exec 202 test -e /bin/sleep
check "201 has no /bin/sleep" vectl exec 201 test ! -e /bin/sleep
check "the template's inittab is as it was" bash -c "! grep -q '# 201' '$LAYER/etc/inittab'"
check "the template's layer cannot be written" bash -c "! touch '$LAYER/x' 2>/dev/null"

begin_case "one file system in a layered VE: the template's files and its own share st_dev"
# Without xino, a file from the template shows its layer's device: du -x and
# find -xdev would leave it out.
DEVS=$(vectl exec 201 stat -c %d / /bin/busybox /etc/inittab /root/f 2>&1 | sort -u)
assert_eq "$(echo "$DEVS" | wc -l)" 1 "devices of /, /bin/busybox (template), /etc/inittab (copied up), /root/f (new): $(echo $DEVS)"
assert_eq "$(vectl exec 201 find / -xdev -name busybox -path /bin/busybox 2>&1)" /bin/busybox \
        "find -xdev reaches the template's /bin/busybox"

begin_case "the template's page cache is shared: one VE's busybox pages are the other's"
sync
echo 3 >/proc/sys/vm/drop_caches
M201=$(mapped_kb 201)
M202=$(mapped_kb 202)
# Each init maps ~1.4 MB of busybox; a page is charged to the first VE to touch it.
check "mapped file pages charged to 201 and 202: $M201 and $M202 KiB, one of them small" \
        test "$((M201 < M202 ? M201 : M202))" -lt 256 -a "$((M201 + M202))" -gt 512

begin_case "df in a layered VE shows its diskspace"
assert_eq "$(vectl exec 201 df -k / 2>&1 | awk 'NR == 2 { print $2 }')" 1048576 "df's size (KiB)"

begin_case "a live hostname change writes through the overlay, as the VE's root"
OUT=$(vectl set 201 --hostname l201b.example.com 2>&1)
assert_eq "$?" 0 "vectl set --hostname ($OUT)"
assert_eq "$(vectl exec 201 cat /etc/hostname 2>&1)" l201b.example.com "/etc/hostname in 201"
assert_eq "$(stat -c %u:%g "$U201/etc/hostname" 2>&1)" 0:0 "its owner on 201's image"
assert_eq "$(vectl exec 201 hostname 2>&1)" l201b.example.com "hostname in 201"

begin_case "stop and start keep its changes; a kill -9 of ved keeps it running"
vectl stop 201 >/dev/null 2>&1
OUT=$(vectl start 201 2>&1)
assert_eq "$?" 0 "vectl start again ($OUT)"
assert_eq "$(vectl exec 201 cat /root/f 2>&1)" hi "/root/f after a restart"
assert_eq "$(vectl exec 201 cat /etc/hostname 2>&1)" l201b.example.com "/etc/hostname after it"

begin_case "a start writes the guest's files set while stopped, through the overlay, as the VE's root"
vectl stop 202 >/dev/null 2>&1
OUT=$(vectl set 202 --hostname l202.example.com --nameserver 192.0.2.53 2>&1)
assert_eq "$?" 0 "vectl set while stopped ($OUT)"
OUT=$(vectl start 202 2>&1)
assert_eq "$?" 0 "vectl start 202 ($OUT)"
assert_eq "$(vectl exec 202 sh -c 'hostname; cat /etc/hostname' 2>&1)" \
        $'l202.example.com\nl202.example.com' "hostname and /etc/hostname in 202"
check "/etc/resolv.conf in 202 names the nameserver" \
        bash -c "$VECTL_BIN --socket $SOCK exec 202 cat /etc/resolv.conf | grep -qx 'nameserver 192.0.2.53'"
assert_eq "$(stat -c %u:%g "$STATE_DIR/ves/202/private/upper/etc/hostname" 2>&1)" 0:0 \
        "/etc/hostname's owner on 202's image"
assert_eq "$(findmnt -n -o FSTYPE "$STATE_DIR/ves/202/root")" overlay "the host's view of 202"
assert_eq "$(findmnt -n "$STATE_DIR/ves/202/root" | wc -l)" 1 "mounts at 202's root"
ved_kill9
ved_start || fail "the daemon starts again"
assert_eq "$(ve_state 201)" running "VE 201 after the daemon's restart"
assert_eq "$(vectl exec 201 cat /root/f 2>&1)" hi "exec in the adopted VE"
assert_eq "$(layer_mounts)" 1 "mounts of the template's layer"

begin_case "a --diskinodes change rebuilds a layered VE's image with its deletions"
# 201 removed /bin/sleep (a whiteout on its image); an emptied and remade
# directory is opaque (an xattr). mkfs -d must carry both.
OUT=$(vectl exec 201 sh -c 'rm -rf /etc/init.d && mkdir /etc/init.d && echo n > /etc/init.d/x' 2>&1)
assert_eq "$?" 0 "remake /etc/init.d in 201 ($OUT)"
vectl stop 201 >/dev/null 2>&1
OUT=$(vectl set 201 --diskinodes 70000 2>&1 && vectl start 201 2>&1)
assert_eq "$?" 0 "vectl set --diskinodes, then start ($OUT)"
# Created with 294912 (its 1G's default): the rebuilt image has what was asked,
# rounded up to whole block groups.
assert_eq "$(vectl exec 201 df -i / 2>&1 | awk 'NR == 2 { print ($2 >= 70000 && $2 < 80000) }')" 1 \
        "inodes in 201 after the change (70000 asked)"
check "201 still has no /bin/sleep" vectl exec 201 test ! -e /bin/sleep
assert_eq "$(vectl exec 201 ls /etc/init.d 2>&1)" x "201's /etc/init.d holds only its own file"
assert_eq "$(vectl exec 201 cat /root/f 2>&1)" hi "/root/f after the rebuild"

begin_case "ten stops and starts through the API: each start gives the host its view"
# The host's view is a clone of the overlay made before the child attaches it (a
# clone after that fails): a fast client made that race lose every time.
for i in $(seq 10); do
        api POST /v1/ves/202/state '{"action":"stop"}'
        wait_op "$(op_id_from_location)" 60
        api POST /v1/ves/202/state '{"action":"start"}'
        wait_op "$(op_id_from_location)" 60
        [ "$OP_STATUS" = succeeded ] || break
done
assert_eq "$OP_STATUS" succeeded "start $i of 10"
assert_eq "$(findmnt -n -o FSTYPE "$STATE_DIR/ves/202/root")" overlay "the host's view of 202"

begin_case "the template cannot be removed while a layered VE uses it"
OUT=$(vectl template remove busybox 2>&1)
assert_eq "$?" 5 "exit code ($OUT)"
assert_match "$OUT" "layered VE 20[12]" "the message names a VE"
check "the template is still there" test -s "$STATE_DIR/templates/busybox.img"

begin_case "destroy leaves nothing of the VEs; removing the template then unmounts its layer"
for ct in 201 202; do
        OUT=$(vectl destroy $ct --force 2>&1)
        assert_eq "$?" 0 "vectl destroy $ct ($OUT)"
done
assert_eq "$(host_leftovers 201 202)" "" "what the host holds of 201 and 202"
OUT=$(vectl template remove busybox 2>&1)
assert_eq "$?" 0 "vectl template remove ($OUT)"
assert_eq "$(layer_mounts)" 0 "mounts of the template's layer"
assert_eq "$(losetup -a | grep -c "$STATE_DIR/templates/")" 0 "loop devices of templates/"

finish
