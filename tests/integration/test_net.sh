#!/usr/bin/env bash
# VE networking on a real host (issue 7): routed VEs reachable from the host and
# from each other over IPv4 and IPv6; --ipdel cuts and --ipadd restores an address
# live; the nftables guard drops what a VE sends from a foreign address, and ARP
# claims for a foreign address; --rate holds a TCP stream to the rate each way;
# the traffic counters match what was sent and survive a daemon restart; after
# destroy, and after kill -9 of ved followed by restart and destroy, nothing of a
# VE is left in ip link/route/neigh proxy, nft or tc. Needs root, iperf3 and nft.
#
# All traffic stays on this machine, to addresses the test itself gives out:
# 10.23.0.0/16 and fd00:23::/48.
#
#   bash tests/integration/test_net.sh      (VED_BUILD=dir to pick the build)

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

INSTANCE=nt$(($$ % 100000))
UPLINK=${INSTANCE}up
OUTSIDE=${INSTANCE}out
OUT_IF=${INSTANCE}o
RECV_TABLE=vedtest_$INSTANCE

if [ "$(id -u)" != 0 ]; then
        echo "skipped: needs root (veth, nftables, tc, namespaces)"
        exit 0
fi
for tool in iperf3 nft tc nsenter ip; do
        if ! command -v "$tool" >/dev/null; then
                echo "test_net.sh needs $tool: scripts/install-deps installs it" >&2
                exit 1
        fi
done

test_cleanup()
{
        ves_teardown_all
        pkill_iperf
        nft delete table arp "$RECV_TABLE" 2>/dev/null
        ip link del "$UPLINK" 2>/dev/null
        ip link del "$OUT_IF" 2>/dev/null
        ip netns del "$OUTSIDE" 2>/dev/null
        return 0
}

# The iperf3 servers this test started (by pid file, never by name).
pkill_iperf()
{
        local f

        for f in "$T"/iperf-*.pid; do
                [ -f "$f" ] || continue
                kill "$(cat "$f")" 2>/dev/null
                rm -f "$f"
        done
}

veth_of()
{
        case $INSTANCE in
        *[0-9]) echo "$INSTANCE-$1" ;;
        *) echo "$INSTANCE$1" ;;
        esac
}

ifb_of()
{
        echo "$INSTANCE.$1"
}

# in_ve CTID COMMAND...: run a host program in the VE's network namespace.
in_ve()
{
        local ctid=$1 pid

        shift
        pid=$(ve_init_pid "$ctid")
        [ -n "$pid" ] || return 1
        nsenter --net="/proc/$pid/ns/net" "$@"
}

# ve_ping CTID ADDR [SRC]: one ping from inside the VE (busybox ping).
ve_ping()
{
        vectl exec "$1" ping -c 1 -W 2 ${3:+-I "$3"} "$2" >/dev/null 2>&1
}

host_ping()
{
        ping -c 1 -W 2 "$1" >/dev/null 2>&1
}

# leftovers CTID ADDR...: what the host still holds of the VE's network, one a line;
# with GUARD_KEPT=1, but for its nftables guard (a stopped VE keeps it).
leftovers()
{
        local ctid=$1 veth ifb a

        shift
        veth=$(veth_of "$ctid")
        ifb=$(ifb_of "$ctid")
        ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' |
                grep -x -e "$veth" -e "$ifb" | sed 's/^/link: /'
        for a in "$@"; do
                ip route show | grep -w -F -- "$a" | sed 's/^/route: /'
                ip -6 route show | grep -w -F -- "$a" | sed 's/^/route6: /'
                ip neigh show proxy | grep -w -F -- "$a" | sed 's/^/proxy: /'
                ip -6 neigh show proxy | grep -w -F -- "$a" | sed 's/^/proxy6: /'
        done
        [ "${GUARD_KEPT:-}" = 1 ] ||
                nft list ruleset 2>/dev/null | grep -w -F -e "$veth" | sed 's/^/nft: /'
        tc qdisc show | grep -w -F -e "$veth" -e "$ifb" | sed 's/^/tc: /'
        return 0
}

daemon()
{
        ved_start --uplink "$UPLINK,$OUT_IF" --bridge-subnet 10.23.200.1/24 \
                --bridge-subnet6 fd00:23:200::1/64
}

# out_count NAME: packets of a counter in the outside namespace.
out_count()
{
        ip netns exec "$OUTSIDE" nft -j list counter inet outcount "$1" 2>/dev/null |
                jq -r '.nftables[] | select(.counter) | .counter.packets'
}

# traffic CTID FIELD: the VE's counter from GET /v1/ves/CTID/usage (its "network").
traffic()
{
        curl -s --max-time 10 --unix-socket "$SOCK" "http://ved/v1/ves/$1/usage" 2>/dev/null |
                jq -r --arg f "$2" '.network[$f] // 0' 2>/dev/null
}

# A receiver we control, for ARP: the host's own arp input hook, after the guard.
recv_table()
{
        nft -f - <<EOF
add table arp $RECV_TABLE
add counter arp $RECV_TABLE foreign
add counter arp $RECV_TABLE own
add chain arp $RECV_TABLE input { type filter hook input priority 0; policy accept; }
add rule arp $RECV_TABLE input iifname "$(veth_of 201)" arp saddr ip 10.23.1.2 counter name foreign
add rule arp $RECV_TABLE input iifname "$(veth_of 201)" arp saddr ip 10.23.1.1 counter name own
EOF
}

recv_count()
{
        nft -j list counter arp "$RECV_TABLE" "$1" 2>/dev/null |
                jq -r '.nftables[] | select(.counter) | .counter.packets'
}

# iperf_rate CTID [-R]: Mbit/s of a 5 s TCP stream host -> VE (or VE -> host with -R).
iperf_rate()
{
        local ctid=$1 addr=$2 bps

        shift 2
        in_ve "$ctid" iperf3 -s -1 -D -B "$addr" --pidfile "$T/iperf-$ctid.pid" >/dev/null 2>&1
        sleep 0.5
        bps=$(iperf3 -c "$addr" -t 5 -O 1 -J "$@" 2>/dev/null |
                jq -r '.end.sum_received.bits_per_second // 0')
        pkill_iperf
        awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e6 }'
}

within()
{
        awk -v v="$1" -v want="$2" -v pct="$3" \
                'BEGIN { exit !(v >= want * (1 - pct / 100) && v <= want * (1 + pct / 100)) }'
}

ip link add "$UPLINK" type veth peer name "${INSTANCE}uq" && ip link set "$UPLINK" up &&
        ip addr add 10.23.255.1/32 dev "$UPLINK" &&
        ip addr add fd00:23:ff::1/128 dev "$UPLINK" nodad ||
        { fail "a veth uplink for the test"; finish; }
# "The outside": a namespace behind the host, reached by bridged VEs through NAT.
ip netns add "$OUTSIDE" && ip link add "$OUT_IF" type veth peer name eth0 netns "$OUTSIDE" &&
        ip addr add 10.23.50.1/24 dev "$OUT_IF" && ip link set "$OUT_IF" up &&
        ip -n "$OUTSIDE" addr add 10.23.50.2/24 dev eth0 && ip -n "$OUTSIDE" link set eth0 up &&
        ip -n "$OUTSIDE" link set lo up &&
        ip addr add fd00:23:50::1/64 dev "$OUT_IF" nodad &&
        ip -n "$OUTSIDE" addr add fd00:23:50::2/64 dev eth0 nodad ||
        { fail "the outside namespace"; finish; }
ip netns exec "$OUTSIDE" nft -f - <<'EOF' || fail "counters in the outside namespace"
add table inet outcount
add counter inet outcount masq
add counter inet outcount raw
add chain inet outcount input { type filter hook input priority 0; policy accept; }
add rule inet outcount input ip saddr 10.23.50.1 counter name masq
add rule inet outcount input ip saddr 10.23.200.0/24 counter name raw
add counter inet outcount masq6
add counter inet outcount raw6
add rule inet outcount input ip6 saddr fd00:23:50::1 counter name masq6
add rule inet outcount input ip6 saddr fd00:23:200::/64 counter name raw6
EOF

begin_case "a bad bridge-subnet or bridge-subnet6 keeps the daemon from starting, saying why"
for bad in "--bridge-subnet6 10.23.200.1/24" "--bridge-subnet6 fd00:23:200::1" \
        "--bridge-subnet6 fd00:23:200::1/127" "--bridge-subnet fd00:23:200::1/64"; do
        # shellcheck disable=SC2086 # two words: the flag and its value
        ved_start_expect_fail $bad
        assert_ne "$VED_EXIT" 0 "ved $bad: exit status"
        assert_ne "$VED_EXIT" 999 "ved $bad: exits instead of serving"
        assert_match "$VED_OUTPUT" "bridge-subnet6? '" "ved $bad: the message names the key"
done

daemon || { fail "the daemon starts"; finish; }
ensure_template || { fail "the busybox template"; finish; }

# --- routed mode ------------------------------------------------------------

begin_case "two routed VEs start with IPv4 and IPv6 addresses"
for c in 201 202; do
        n=${c: -1}
        OUT=$(vectl create "$c" --ostemplate "$TEMPLATE" --ipadd "10.23.1.$n" \
                --ipadd "fd00:23::$n" 2>&1)
        assert_eq "$?" 0 "vectl create $c ($OUT)"
        OUT=$(vectl start "$c" 2>&1)
        assert_eq "$?" 0 "vectl start $c ($OUT)"
done
check "host veth of 201" bash -c "ip link show $(veth_of 201) >/dev/null"
assert_match "$(ip neigh show proxy dev "$UPLINK")" '10\.23\.1\.1' "proxy ARP entry on the uplink"
assert_match "$(ip -6 neigh show proxy dev "$UPLINK")" 'fd00:23::1' "proxy NDP entry"

begin_case "host <-> VE ping, IPv4 and IPv6"
check "host pings 10.23.1.1" host_ping 10.23.1.1
check "host pings fd00:23::1" host_ping fd00:23::1
check "VE 201 pings the host's 10.23.255.1" ve_ping 201 10.23.255.1
check "VE 201 pings the host's fd00:23:ff::1" ve_ping 201 fd00:23:ff::1

begin_case "VE <-> VE ping, IPv4 and IPv6"
check "201 pings 202 (v4)" ve_ping 201 10.23.1.2
check "202 pings 201 (v4)" ve_ping 202 10.23.1.1
check "201 pings 202 (v6)" ve_ping 201 fd00:23::2
check "202 pings 201 (v6)" ve_ping 202 fd00:23::1

begin_case "--ipdel cuts an address live, --ipadd restores it"
OUT=$(vectl set 202 --ipdel 10.23.1.2 2>&1)
assert_eq "$?" 0 "vectl set --ipdel ($OUT)"
check "host no longer reaches 10.23.1.2" bash -c '! ping -c 1 -W 1 10.23.1.2 >/dev/null 2>&1'
check "201 no longer reaches 10.23.1.2" bash -c "! $VECTL_BIN --socket $SOCK exec 201 ping -c 1 -W 1 10.23.1.2 >/dev/null 2>&1"
check "IPv6 of 202 still works" ve_ping 201 fd00:23::2
assert_eq "$(ip route show 10.23.1.2)" "" "host route of 10.23.1.2"
OUT=$(vectl set 202 --ipadd 10.23.1.2 2>&1)
assert_eq "$?" 0 "vectl set --ipadd ($OUT)"
check "host reaches 10.23.1.2 again" host_ping 10.23.1.2
check "201 reaches 10.23.1.2 again" ve_ping 201 10.23.1.2
OUT=$(vectl set 202 --ipdel fd00:23::2 2>&1)
check "201 no longer reaches fd00:23::2" bash -c "! $VECTL_BIN --socket $SOCK exec 201 ping -c 1 -W 1 fd00:23::2 >/dev/null 2>&1"
OUT=$(vectl set 202 --ipadd fd00:23::2 2>&1)
check "201 reaches fd00:23::2 again" ve_ping 201 fd00:23::2

begin_case "an address another VE holds is refused with 409 naming it"
api PATCH /v1/ves/202 '{"ipadd":["10.23.1.1"]}'
assert_error 409
assert_match "$BODY" '201' "the message names VE 201"

begin_case "an address change that fails leaves nothing of it: not on the VE, not in its guard"
# A route of the host's own to the address: the VE's host route cannot be added.
ip route add 10.23.9.9/32 dev lo
api PATCH /v1/ves/202 '{"ipadd":["10.23.9.9","fd00:23::99"],"ipdel":["10.23.1.2"]}'
assert_error 409
assert_match "$BODY" '10\.23\.9\.9' "the message names the address"
ip route del 10.23.9.9/32 dev lo
VEADDRS=$(vectl exec 202 ip addr show dev eth0 2>&1)
assert_eq "$(grep -c -E '10\.23\.9\.9|fd00:23::99' <<<"$VEADDRS")" 0 "new addresses on 202's eth0"
assert_match "$VEADDRS" '10\.23\.1\.2/' "the address the change would have deleted"
assert_eq "$(nft list table netdev "ved_$INSTANCE" 2>&1 | grep -c -E '10\.23\.9\.9|fd00:23::99')" 0 \
        "the new addresses in the guard"
check "201 still reaches 10.23.1.2" ve_ping 201 10.23.1.2
api GET /v1/ves/202
assert_json '.ip | join(",")' "10.23.1.2,fd00:23::2" "202's addresses in the API"

# --- anti-spoofing ----------------------------------------------------------

begin_case "a VE sending from a foreign address: nothing arrives"
# VE 202 counts what reaches it from 10.23.1.99 (its own netns, a counter rule).
in_ve 202 nft -f - <<'EOF'
add table inet spoofcount
add counter inet spoofcount hits
add chain inet spoofcount input { type filter hook input priority 0; policy accept; }
add rule inet spoofcount input ip saddr 10.23.1.99 counter name hits
add rule inet spoofcount input ip6 saddr fd00:23::99 counter name hits
EOF
vectl exec 201 ip addr add 10.23.1.99/32 dev eth0 >/dev/null 2>&1
vectl exec 201 ip addr add fd00:23::99/128 dev eth0 >/dev/null 2>&1
vectl exec 201 ping -c 3 -W 1 -I 10.23.1.99 10.23.1.2 >/dev/null 2>&1
vectl exec 201 ping -c 3 -W 1 -I fd00:23::99 fd00:23::2 >/dev/null 2>&1
hits=$(in_ve 202 nft -j list counter inet spoofcount hits | jq -r '.nftables[] | select(.counter) | .counter.packets')
assert_eq "$hits" 0 "packets from the foreign addresses at VE 202"
# The same counter sees them once the addresses are the VE's own.
vectl set 201 --ipadd 10.23.1.99 --ipadd fd00:23::99 >/dev/null 2>&1
vectl exec 201 ping -c 2 -W 1 -I 10.23.1.99 10.23.1.2 >/dev/null 2>&1
vectl exec 201 ping -c 2 -W 1 -I fd00:23::99 fd00:23::2 >/dev/null 2>&1
hits=$(in_ve 202 nft -j list counter inet spoofcount hits | jq -r '.nftables[] | select(.counter) | .counter.packets')
check "the receiver counts them once they are allowed ($hits)" test "${hits:-0}" -ge 4
vectl set 201 --ipdel 10.23.1.99 --ipdel fd00:23::99 >/dev/null 2>&1
in_ve 202 nft delete table inet spoofcount

begin_case "ARP claims for a foreign address are dropped"
recv_table || fail "the ARP receiver table"
vectl exec 201 ip addr add 10.23.1.2/32 dev eth0 >/dev/null 2>&1
vectl exec 201 arping -U -c 3 -w 3 -I eth0 -s 10.23.1.2 10.23.1.2 >/dev/null 2>&1
vectl exec 201 arping -U -c 3 -w 3 -I eth0 -s 10.23.1.1 10.23.1.1 >/dev/null 2>&1
assert_eq "$(recv_count foreign)" 0 "ARP from VE 201 claiming 10.23.1.2, at the host"
check "ARP with the VE's own address arrives ($(recv_count own))" test "$(recv_count own)" -ge 1
assert_eq "$(ip neigh show 10.23.1.2 dev "$(veth_of 201)")" "" "neighbour entry for 10.23.1.2 on 201's veth"
vectl exec 201 ip addr del 10.23.1.2/32 dev eth0 >/dev/null 2>&1
nft delete table arp "$RECV_TABLE"

begin_case "a VE with a foreign MAC sends nothing"
vectl exec 201 ip link set eth0 address 02:00:00:23:00:99 >/dev/null 2>&1
check "201 cannot reach 202 with a foreign MAC" bash -c "! $VECTL_BIN --socket $SOCK exec 201 ping -c 1 -W 1 10.23.1.2 >/dev/null 2>&1"
mac=$(ip -o link show "$(veth_of 201)" | sed -n 's/.*link\/ether \(..\):\(..\):\(.*\) brd.*/02:\2:\3/p')
vectl exec 201 ip link set eth0 address "$mac" >/dev/null 2>&1
check "and can again with its own ($mac)" ve_ping 201 10.23.1.2

# --- traffic counters -------------------------------------------------------

begin_case "traffic counters match the bytes sent (±5%)"
# A transfer whose size is known exactly: 500 pings of 8000 bytes, each an 8028-byte
# IP datagram each way (the counters see Ethernet frames: fragments add ~2%).
in0=$(traffic 201 bytes_in)
out0=$(traffic 201 bytes_out)
stats=$(ping -q -c 500 -s 8000 -i 0.002 -W 2 10.23.1.1 2>/dev/null | grep 'packets transmitted')
tx=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$stats")
rx=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$stats")
din=$(($(traffic 201 bytes_in) - in0))
dout=$(($(traffic 201 bytes_out) - out0))
check "bytes in $din vs $((tx * 8028)) sent to the VE" within "$din" "$((${tx:-0} * 8028 + 1))" 5
check "bytes out $dout vs $((rx * 8028)) sent by the VE" within "$dout" "$((${rx:-0} * 8028 + 1))" 5
# And a TCP stream, for the packet counter and the totals below.
in_ve 201 iperf3 -s -1 -D -B 10.23.1.1 --pidfile "$T/iperf-201.pid" >/dev/null 2>&1
sleep 0.5
iperf3 -c 10.23.1.1 -n 20M >/dev/null 2>&1
pkill_iperf
check "packets counted" test "$(traffic 201 packets_in)" -gt 100
assert_match "$(curl -s --unix-socket "$SOCK" http://ved/metrics)" \
        'ved_network_receive_bytes_total\{[^}]*201[^}]*\} [1-9]' "/metrics has VE 201's traffic"
OUT=$(vectl list -o ctid,netin,netout 2>&1)
assert_match "$OUT" '201 +[0-9.]+[KMG]' "vectl list -o netin,netout"

begin_case "the counters survive a daemon restart and a VE restart"
before=$(traffic 201 bytes_in)
ved_kill9
daemon || fail "the daemon starts again"
OUT=$(vectl restart 201 2>&1)
assert_eq "$?" 0 "vectl restart 201 ($OUT)"
host_ping 10.23.1.1
sleep $((5 + 1))
after=$(traffic 201 bytes_in)
check "bytes_in did not go back ($before -> $after)" test "$after" -ge "$before"

# --- --rate -----------------------------------------------------------------

begin_case "--rate 10 holds TCP to 10 Mbit/s ±15% in each direction, live"
OUT=$(vectl set 202 --rate 10 2>&1)
assert_eq "$?" 0 "vectl set --rate 10 ($OUT)"
assert_match "$(tc qdisc show dev "$(veth_of 202)")" 'tbf' "tbf on the host veth"
check "ifb of 202" bash -c "ip link show $(ifb_of 202) >/dev/null"
r=$(iperf_rate 202 10.23.1.2)
check "towards the VE: $r Mbit/s" within "$r" 10 15
r=$(iperf_rate 202 10.23.1.2 -R)
check "from the VE: $r Mbit/s" within "$r" 10 15
OUT=$(vectl set 202 --rate 0 2>&1)
assert_eq "$?" 0 "vectl set --rate 0 ($OUT)"
check "no ifb after --rate 0" bash -c "! ip link show $(ifb_of 202) >/dev/null 2>&1"
r=$(iperf_rate 202 10.23.1.2 -R)
check "unlimited again: $r Mbit/s" awk -v r="$r" 'BEGIN { exit !(r > 30) }'

begin_case "a change refused by the kernel (ram below what the VE holds) leaves the rate as it was"
vectl exec 202 sh -c 'dd if=/dev/zero of=/dev/shm/hold bs=1M count=40' >/dev/null 2>&1
api PATCH /v1/ves/202 '{"rate":5,"ram":"8M"}'
assert_error 409
check "no tbf on the host veth" bash -c "! tc qdisc show dev $(veth_of 202) | grep -q tbf"
check "no ifb of 202" bash -c "! ip link show $(ifb_of 202) >/dev/null 2>&1"
api GET /v1/ves/202
assert_json '[.rate, .ram] | map(tostring) | join(",")' "0,null" "202's rate and ram in the API"
vectl exec 202 rm -f /dev/shm/hold >/dev/null 2>&1

begin_case "bad --rate is refused"
api PATCH /v1/ves/202 '{"rate":-1}'
assert_error 400
api PATCH /v1/ves/202 '{"rate":"fast"}'
assert_error 400
api PATCH /v1/ves/202 '{"rate":99999999}'
assert_error 400

# --- bridged mode -------------------------------------------------------------

begin_case "a bridged VE reaches the outside through NAT (ping and TCP)"
OUT=$(vectl create 301 --ostemplate "$TEMPLATE" --ipadd 10.23.200.10 --netif_add eth0 2>&1)
assert_eq "$?" 0 "vectl create --netif_add ($OUT)"
OUT=$(vectl start 301 2>&1)
assert_eq "$?" 0 "vectl start 301 ($OUT)"
api GET /v1/ves/301
assert_json .netif.ifname eth0 "netif in the API"
check "the host veth is a port of ${INSTANCE}0" bash -c \
        "ip -o link show master ${INSTANCE}0 | grep -q -w $(veth_of 301)"
assert_match "$(ip -4 -o addr show dev "${INSTANCE}0")" '10\.23\.200\.1/24' "bridge gateway"
assert_match "$(vectl exec 301 ip route 2>&1)" 'default via 10\.23\.200\.1' "the VE's default route"
check "VE pings the gateway" ve_ping 301 10.23.200.1
m0=$(out_count masq)
check "VE pings the outside" ve_ping 301 10.23.50.2
check "masqueraded packets arrive outside ($m0 -> $(out_count masq))" test "$(out_count masq)" -gt "$m0"
assert_eq "$(out_count raw)" 0 "packets outside with the VE's private source"
# A TCP exchange through the NAT; on a busy host the first connection can be lost
# (the listener not yet listening, the VE's nc giving up): tried up to three times,
# each with a fresh listener, waited for rather than guessed.
for _ in 1 2 3; do
        ip netns exec "$OUTSIDE" timeout 10 busybox nc -l -p 8080 >"$T/nat.txt" 2>/dev/null &
        LISTENER=$!
        bg_track $LISTENER
        wait_until 5 bash -c "ip netns exec $OUTSIDE ss -ltn | grep -q ':8080 '"
        vectl exec 301 sh -c 'echo hello-from-301 | nc 10.23.50.2 8080' >/dev/null 2>&1
        wait_until 5 test -s "$T/nat.txt" && break
        kill "$LISTENER" 2>/dev/null
        wait "$LISTENER" 2>/dev/null
done
assert_eq "$(cat "$T/nat.txt" 2>/dev/null)" hello-from-301 "what the outside received over TCP"

begin_case "a bridged VE reaches the outside over IPv6 through NAT66"
OUT=$(vectl set 301 --ipadd fd00:23:200::10 2>&1)
assert_eq "$?" 0 "vectl set --ipadd fd00:23:200::10 ($OUT)"
assert_match "$(ip -6 -o addr show dev "${INSTANCE}0")" 'fd00:23:200::1/64' "bridge IPv6 gateway"
assert_match "$(vectl exec 301 ip -6 addr show dev eth0 2>&1)" 'fd00:23:200::10/64' "the VE's address in the bridge's subnet"
assert_match "$(vectl exec 301 ip -6 route 2>&1)" 'default via fd00:23:200::1' "the VE's IPv6 default route"
check "VE pings the IPv6 gateway" ve_ping 301 fd00:23:200::1
m0=$(out_count masq6)
check "VE pings the outside over IPv6" ve_ping 301 fd00:23:50::2
check "masqueraded IPv6 packets arrive outside ($m0 -> $(out_count masq6))" test "$(out_count masq6)" -gt "$m0"
assert_eq "$(out_count raw6)" 0 "IPv6 packets outside with the VE's private source"

begin_case "a bridged VE cannot send from a foreign address or MAC"
vectl exec 301 ip addr add 10.23.200.99/24 dev eth0 >/dev/null 2>&1
m0=$(out_count masq)
vectl exec 301 ping -c 3 -W 1 -I 10.23.200.99 10.23.50.2 >/dev/null 2>&1
assert_eq "$(out_count masq)" "$m0" "packets outside from the foreign address"
vectl exec 301 ip addr del 10.23.200.99/24 dev eth0 >/dev/null 2>&1
vectl exec 301 ip link set eth0 address 02:00:00:23:00:98 >/dev/null 2>&1
check "no ping with a foreign MAC" bash -c "! $VECTL_BIN --socket $SOCK exec 301 ping -c 1 -W 1 10.23.50.2 >/dev/null 2>&1"
mac=$(ip -o link show "$(veth_of 301)" | sed -n 's/.*link\/ether \(..\):\(..\):\(.*\) brd.*/02:\2:\3/p')
vectl exec 301 ip link set eth0 address "$mac" >/dev/null 2>&1
check "pings again with its own MAC" ve_ping 301 10.23.50.2

begin_case "bridged --ipadd is live; netif cannot change while running; bad netif is 400"
OUT=$(vectl set 301 --ipadd 10.23.200.11 2>&1)
assert_eq "$?" 0 "vectl set --ipadd ($OUT)"
check "pings the outside from the new address" ve_ping 301 10.23.50.2 10.23.200.11
api PATCH /v1/ves/301 '{"netif":null}'
assert_error 409
api PATCH /v1/ves/301 '{"bridge":"br0"}'
assert_error 409
api PATCH /v1/ves/301 '{"netif":"eth0,zz:00:00:00:00:01"}'
assert_error 400
api PATCH /v1/ves/301 '{"netif":{"ifname":"bad name"}}'
assert_error 400
api PATCH /v1/ves/301 '{"netif":"eth0,,veth301.0"}'
assert_error 400
api PATCH /v1/ves/301 '{"netif":{"ifname":"eth0","nope":1}}'
assert_error 400

begin_case "a bridged VE cannot take the bridge's gateway, network or broadcast address"
# (The gateway, once the bridge exists, is also the host's: 409 saying so.)
for a in 10.23.200.0 10.23.200.255 fd00:23:200::; do
        OUT=$(vectl create 304 --ostemplate "$TEMPLATE" --netif_add eth0 --ipadd "$a" 2>&1)
        assert_eq "$?" 6 "create bridged with $a ($OUT)"
        assert_match "$OUT" "address $a is the gateway, network or broadcast address of bridge" \
                "the message for $a"
done
api GET /v1/ves/304
assert_error 404
api PATCH /v1/ves/301 '{"ipadd":["10.23.200.255"]}'
assert_error 400
# A routed VE may have any of them: they are not on its link.
OUT=$(vectl create 304 --ostemplate "$TEMPLATE" --ipadd 10.23.200.255 2>&1)
assert_eq "$?" 0 "create routed with 10.23.200.255 ($OUT)"
api PATCH /v1/ves/304 '{"netif":"eth0"}'
assert_error 400
check "destroy 304" vectl destroy 304

begin_case "a bridged VE cannot be given another's MAC: 409 naming it"
MAC301=$(vectl exec 301 cat /sys/class/net/eth0/address 2>&1)
OUT=$(vectl create 303 --ostemplate "$TEMPLATE" --netif_add "eth0,$MAC301" 2>&1)
assert_eq "$?" 5 "create with 301's MAC ($OUT)"
assert_match "$OUT" 'VE 301' "the message names VE 301"
api GET /v1/ves/303
assert_error 404
OUT=$(vectl create 303 --ostemplate "$TEMPLATE" --netif_add eth0 2>&1)
assert_eq "$?" 0 "create 303 with a MAC of its own ($OUT)"
api PATCH /v1/ves/303 "{\"netif\":\"eth0,$MAC301\"}"
assert_error 409
assert_match "$BODY" 'VE 301' "the PATCH's message names VE 301"
OUT=$(vectl destroy 303 2>&1)
assert_eq "$?" 0 "destroy 303 ($OUT)"

begin_case "a bridged VE whose IPv6 address is outside the bridge's subnet starts: a /128, on-link gateway"
OUT=$(vectl create 302 --ostemplate "$TEMPLATE" --netif_add eth0 --ipadd 10.23.200.12 \
        --ipadd fd00:23:201::12 2>&1)
assert_eq "$?" 0 "vectl create 302 ($OUT)"
OUT=$(vectl start 302 2>&1)
assert_eq "$?" 0 "vectl start 302 ($OUT)"
assert_match "$(vectl exec 302 ip -6 addr show dev eth0 2>&1)" 'fd00:23:201::12/128' "the /128"
assert_match "$(vectl exec 302 ip -6 route 2>&1)" 'default via fd00:23:200::1 dev eth0.*onlink' \
        "the VE's IPv6 default route"
OUT=$(vectl destroy 302 --force 2>&1)
assert_eq "$?" 0 "vectl destroy 302 ($OUT)"
assert_eq "$(leftovers 302 10.23.200.12 fd00:23:201::12)" "" "what the host holds of 302"

begin_case "destroying the bridged VE leaves nothing of it"
OUT=$(vectl destroy 301 --force 2>&1)
assert_eq "$?" 0 "vectl destroy ($OUT)"
assert_eq "$(leftovers 301 10.23.200.10 10.23.200.11 fd00:23:200::10)" "" "what the host holds of 301"

begin_case "a VE on a bridge that does not exist: start refused, saying so; nothing left"
OUT=$(vectl create 302 --ostemplate "$TEMPLATE" --ipadd 10.23.200.12 --netif_add eth0 \
        --bridge "${INSTANCE}nb" 2>&1)
assert_eq "$?" 0 "vectl create --bridge ${INSTANCE}nb ($OUT)"
OUT=$(vectl start 302 2>&1)
assert_ne "$?" 0 "vectl start fails"
assert_match "$OUT" "bridge ${INSTANCE}nb does not exist" "the error names the bridge"
assert_eq "$(ve_state 302)" stopped "VE 302 stays stopped"
assert_eq "$(leftovers 302 10.23.200.12)" "" "what the host holds of 302"
OUT=$(vectl destroy 302 2>&1)
assert_eq "$?" 0 "vectl destroy 302 ($OUT)"

# --- cleanup ----------------------------------------------------------------

# rule_handles CTID: the handles of the rules of the VE's guard (new ones when it
# is built again).
rule_handles()
{
        nft -a list chain netdev "ved_$INSTANCE" "$(veth_of "$1")" 2>/dev/null |
                grep -o 'handle [0-9]*' | tr '\n' ' '
}

begin_case "stop leaves nothing of the VE's network but its guard; start makes it again"
vectl set 202 --rate 10 >/dev/null 2>&1
OUT=$(vectl stop 202 2>&1)
assert_eq "$?" 0 "vectl stop ($OUT)"
assert_eq "$(GUARD_KEPT=1 leftovers 202 10.23.1.2 fd00:23::2)" "" \
        "what the host holds of 202 after stop, but for its guard"
OUT=$(vectl start 202 2>&1)
assert_eq "$?" 0 "vectl start ($OUT)"
check "ifb back with the stored rate" bash -c "ip link show $(ifb_of 202) >/dev/null"
check "201 reaches 202" ve_ping 201 10.23.1.2
# The guard this start built (live address changes earlier made it stale) or
# found; Linux >= 6.16 keeps a netdev chain whose device is gone (older ones drop
# it), and the next start leaves it as it is.
handles=$(rule_handles 202)
assert_ne "$handles" "" "202's guard"
vectl stop 202 >/dev/null 2>&1
kept=$(rule_handles 202)
IFS=. read -r kmaj kmin _ <<<"$(uname -r)"
if [ "$kmaj" -gt 6 ] || { [ "$kmaj" -eq 6 ] && [ "${kmin%%[!0-9]*}" -ge 16 ]; }; then
        assert_eq "$kept" "$handles" "the guard waits for the next start (Linux $(uname -r))"
else
        echo "   (Linux $(uname -r) drops a netdev chain with its device: the start builds it)"
fi
OUT=$(vectl start 202 2>&1)
assert_eq "$?" 0 "vectl start again ($OUT)"
[ -n "$kept" ] && assert_eq "$(rule_handles 202)" "$handles" "the start kept the guard as it was"
# The kept guard holds on the new veth, with --rate too (what it lets through goes
# on to the ifb): a foreign MAC sends nothing, and an address taken off while
# stopped is refused.
vectl exec 202 ip link set eth0 address 02:00:00:23:00:98 >/dev/null 2>&1
check "202 cannot reach 201 with a foreign MAC" bash -c "! $VECTL_BIN --socket $SOCK exec 202 ping -c 1 -W 1 10.23.1.1 >/dev/null 2>&1"
vectl exec 202 ip link set eth0 address "$(ip -o link show "$(veth_of 202)" |
        sed -n 's/.*link\/ether \(..\):\(..\):\(.*\) brd.*/02:\2:\3/p')" >/dev/null 2>&1
check "and can again with its own" ve_ping 202 10.23.1.1
vectl stop 202 >/dev/null 2>&1
vectl set 202 --ipadd 10.23.1.12 >/dev/null 2>&1
vectl set 202 --ipdel 10.23.1.2 >/dev/null 2>&1
OUT=$(vectl start 202 2>&1)
assert_eq "$?" 0 "vectl start after an address change ($OUT)"
assert_ne "$(rule_handles 202)" "$handles" "the guard was built again for the new addresses"
check "201 reaches 202 at its new address" ve_ping 201 10.23.1.12
# What reaches 201 from the address 202 gave up, counted in 201's netns.
in_ve 201 nft -f - <<'EOF'
add table inet gaveup
add counter inet gaveup hits
add chain inet gaveup input { type filter hook input priority 0; policy accept; }
add rule inet gaveup input ip saddr 10.23.1.2 counter name hits
EOF
vectl exec 202 ip addr add 10.23.1.2/32 dev eth0 >/dev/null 2>&1
vectl exec 202 ping -c 3 -W 1 -I 10.23.1.2 10.23.1.1 >/dev/null 2>&1
hits=$(in_ve 201 nft -j list counter inet gaveup hits | jq -r '.nftables[] | select(.counter) | .counter.packets')
assert_eq "$hits" 0 "packets at 201 from the address 202 gave up while stopped"
vectl exec 202 ip addr del 10.23.1.2/32 dev eth0 >/dev/null 2>&1
in_ve 201 nft delete table inet gaveup

begin_case "destroy leaves nothing of the VE's network"
OUT=$(vectl destroy 202 --force 2>&1)
assert_eq "$?" 0 "vectl destroy --force ($OUT)"
api GET /v1/ves/202
assert_status 404
assert_eq "$(leftovers 202 10.23.1.2 10.23.1.12 fd00:23::2)" "" "what the host holds of 202"

begin_case "kill -9 of ved, then restart and destroy: nothing left"
vectl set 201 --rate 20 >/dev/null 2>&1
ved_kill9
daemon || fail "the daemon starts again"
assert_eq "$(ve_state 201)" running "VE 201 was adopted"
vectl stop 201 >/dev/null 2>&1
OUT=$(vectl destroy 201 2>&1)
assert_eq "$?" 0 "vectl destroy ($OUT)"
assert_eq "$(leftovers 201 10.23.1.1 fd00:23::1)" "" "what the host holds of 201"

begin_case "kill -9 of ved while the VE dies: the restart removes what it left, destroy the rest"
vectl create 203 --ostemplate "$TEMPLATE" --ipadd 10.23.1.3 --ipadd fd00:23::3 --rate 5 \
        >/dev/null 2>&1
vectl start 203 >/dev/null 2>&1
check "203's ifb" bash -c "ip link show $(ifb_of 203) >/dev/null"
pid=$(ve_init_pid 203)
ved_kill9
[ -n "$pid" ] && kill -KILL "$pid"
wait_until 10 pid_gone "$pid"
daemon || fail "the daemon starts again"
assert_eq "$(ve_state 203)" stopped "VE 203 after the restart"
assert_eq "$(GUARD_KEPT=1 leftovers 203 10.23.1.3 fd00:23::3)" "" \
        "what the host holds of 203, but for its guard"
OUT=$(vectl destroy 203 2>&1)
assert_eq "$?" 0 "vectl destroy 203 ($OUT)"
assert_eq "$(leftovers 203 10.23.1.3 fd00:23::3)" "" "what the host holds of 203 after destroy"

begin_case "a clean exit with no VE running removes the nftables tables and the bridge"
ved_stop
assert_eq "$(nft list tables 2>/dev/null | grep -c -w "ved_$INSTANCE")" 0 "tables of ved_$INSTANCE"
check "no bridge ${INSTANCE}0" bash -c "! ip link show ${INSTANCE}0 >/dev/null 2>&1"

finish
