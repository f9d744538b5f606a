/* ve/nft.c against the kernel's nftables: a guard's sets hold exactly the
 * addresses given, through install, reinstall, live add and delete and removal,
 * and the table holds no anonymous sets; an install that would change nothing
 * leaves the guard alone, one after a live change or a tampered guard rebuilds
 * it, and a guard outlives its device (Linux >= 6.16). Needs root; skips
 * otherwise. The table is ved_nt<pid>, the interfaces a veth pair of the test's
 * own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ve/nft.h"

static char instance[16], table[VE_NFT_TABLE_LEN], ifname[16], peer[16];
static const uint8_t mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x42 };

/* What `nft list <what>` prints, or "" (the test may read nft's output). */
static char *nft_out(const char *what)
{
        static char out[16384];
        char cmd[256];
        size_t n;
        FILE *p;

        snprintf(cmd, sizeof(cmd), "nft list %s 2>/dev/null", what);
        out[0] = '\0';
        p = popen(cmd, "r");
        if (p == NULL)
                return out;
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        pclose(p);
        return out;
}

/* The listing of ifname's set suffix, which must exist: an absent element is
 * then absent from a set that is there, not from an empty listing. */
static const char *set_of(const char *suffix)
{
        char what[96];
        const char *out;

        snprintf(what, sizeof(what), "set netdev %s %s_%s", table, ifname, suffix);
        out = nft_out(what);
        snprintf(what, sizeof(what), "set %s_%s {", ifname, suffix);
        assert_non_null(strstr(out, what));
        return out;
}

static int setup(void **state)
{
        char cmd[128];

        (void)state;
        if (geteuid() != 0)
                return 0;
        snprintf(instance, sizeof(instance), "nt%d", getpid() % 100000);
        ve_nft_table_name(instance, table, sizeof(table));
        snprintf(ifname, sizeof(ifname), "vnt%dh", getpid() % 100000);
        snprintf(peer, sizeof(peer), "vnt%dp", getpid() % 100000);
        snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s", ifname, peer);
        return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[128];

        (void)state;
        if (geteuid() != 0)
                return 0;
        ve_nft_tables_remove(instance, NULL);
        snprintf(cmd, sizeof(cmd), "ip link del %s 2>/dev/null", ifname);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_guard_sets(void **state)
{
        const char *first[] = { "192.0.2.5", "2001:db8::5", "192.0.2.6" };
        const char *second[] = { "192.0.2.7" };
        struct ve_error err = { 0 };
        const char *chain;
        char what[96];
        int braces = 0;

        (void)state;
        if (geteuid() != 0)
                skip();
        assert_int_equal(ve_nft_guard_install(instance, ifname, mac, first, 3, &err), 0);
        assert_non_null(strstr(set_of("4"), "192.0.2.5"));
        assert_non_null(strstr(set_of("4"), "192.0.2.6"));
        assert_non_null(strstr(set_of("6"), "2001:db8::5"));
        assert_non_null(strstr(set_of("nd"), "0x20010db8000000000000000000000005"));
        /* Only the three named sets: anonymous ones would make every later batch
         * fetch their elements. */
        snprintf(what, sizeof(what), "chain netdev %s %s", table, ifname);
        chain = nft_out(what);
        assert_non_null(strstr(chain, "ether saddr != 02:00:00:00:00:42 drop"));
        for (const char *p = chain; *p != '\0'; p++)
                braces += *p == '{';
        assert_int_equal(braces, 2); /* the table's and the chain's own */

        /* Reinstalling replaces the addresses, it does not add to them. */
        assert_int_equal(ve_nft_guard_install(instance, ifname, mac, second, 1, &err), 0);
        assert_non_null(strstr(set_of("4"), "192.0.2.7"));
        assert_null(strstr(set_of("4"), "192.0.2.5"));
        assert_null(strstr(set_of("6"), "2001:db8::5"));

        /* Live changes, each idempotent. */
        assert_int_equal(ve_nft_guard_addr(instance, ifname, true, "2001:db8::9", &err), 0);
        assert_int_equal(ve_nft_guard_addr(instance, ifname, true, "2001:db8::9", &err), 0);
        assert_non_null(strstr(set_of("6"), "2001:db8::9"));
        assert_non_null(strstr(set_of("nd"), "0x20010db8000000000000000000000009"));
        assert_int_equal(ve_nft_guard_addr(instance, ifname, false, "2001:db8::9", &err), 0);
        assert_int_equal(ve_nft_guard_addr(instance, ifname, false, "2001:db8::9", &err), 0);
        assert_null(strstr(set_of("6"), "2001:db8::9"));
        assert_null(strstr(set_of("nd"), "2001"));
        assert_int_equal(ve_nft_guard_addr(instance, ifname, false, "192.0.2.7", &err), 0);
        assert_null(strstr(set_of("4"), "192.0.2.7"));

        /* Hostile input never reaches nft's grammar. */
        assert_true(ve_nft_guard_addr(instance, ifname, true, "1.2.3.4 } ; flush ruleset", &err) <
                    0);
        assert_int_equal(err.code, VE_EINVAL_INPUT);
        ve_error_clear(&err);

        assert_int_equal(ve_nft_guard_remove(instance, ifname, &err), 0);
        assert_int_equal(ve_nft_guard_remove(instance, ifname, &err), 0);
        snprintf(what, sizeof(what), "table netdev %s", table);
        assert_null(strstr(nft_out(what), ifname));
}

/* The handles of the guard's rules as `nft -a` lists them: a rebuilt guard has
 * new ones. */
static void rule_handles(char *buf, size_t len)
{
        char cmd[256];
        size_t n;
        FILE *p;

        snprintf(
            cmd, sizeof(cmd),
            "nft -a list chain netdev %s %s 2>/dev/null | grep -o 'handle [0-9]*' | tr '\\n' ' '",
            table, ifname);
        buf[0] = '\0';
        p = popen(cmd, "r");
        if (p == NULL)
                return;
        n = fread(buf, 1, len - 1, p);
        buf[n] = '\0';
        pclose(p);
}

/* The listing of the guard's chain ("" when it is not there). */
static const char *guard_chain(void)
{
        char what[96];

        snprintf(what, sizeof(what), "chain netdev %s %s", table, ifname);
        return nft_out(what);
}

static void test_guard_kept(void **state)
{
        const char *addrs[] = { "192.0.2.5", "2001:db8::5" };
        const char *fewer[] = { "192.0.2.5" };
        char before[512], after[512], cmd[256];
        struct ve_error err = { 0 };

        (void)state;
        if (geteuid() != 0)
                skip();
        assert_int_equal(ve_nft_guard_install(instance, ifname, mac, addrs, 2, &err), 0);
        rule_handles(before, sizeof(before));
        assert_true(strlen(before) > 0);
        assert_non_null(strstr(guard_chain(), "ved-guard "));

        /* The same guard again: nothing changes. */
        assert_int_equal(ve_nft_guard_install(instance, ifname, mac, addrs, 2, &err), 0);
        rule_handles(after, sizeof(after));
        assert_string_equal(before, after);

        /* Other addresses: rebuilt, with the new ones only. */
        assert_int_equal(ve_nft_guard_install(instance, ifname, mac, fewer, 1, &err), 0);
        rule_handles(after, sizeof(after));
        assert_string_not_equal(before, after);
        assert_null(strstr(set_of("6"), "2001:db8::5"));

        /* A live change takes the mark away: the same install as before the change
         * then rebuilds, and the address added live is gone. */
        assert_int_equal(ve_nft_guard_addr(instance, ifname, true, "192.0.2.9", &err), 0);
        assert_non_null(strstr(set_of("4"), "192.0.2.9"));
        assert_null(strstr(guard_chain(), "ved-guard "));
        assert_int_equal(ve_nft_guard_install(instance, ifname, mac, fewer, 1, &err), 0);
        assert_null(strstr(set_of("4"), "192.0.2.9"));
        assert_non_null(strstr(guard_chain(), "ved-guard "));

        /* Someone flushed the chain: rebuilt. */
        snprintf(cmd, sizeof(cmd), "nft flush chain netdev %s %s", table, ifname);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(ve_nft_guard_install(instance, ifname, mac, fewer, 1, &err), 0);
        assert_non_null(strstr(guard_chain(), "ved-guard "));

        /* The device goes and comes back (a VE stopped and started): on a kernel
         * that keeps the chain, the guard is still whole and is left alone. */
        rule_handles(before, sizeof(before));
        snprintf(cmd, sizeof(cmd), "ip link del %s", ifname);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s", ifname, peer);
        assert_int_equal(system(cmd), 0);
        rule_handles(after, sizeof(after));
        assert_int_equal(ve_nft_guard_install(instance, ifname, mac, fewer, 1, &err), 0);
        if (strlen(after) > 0) {
                assert_string_equal(before, after);
                rule_handles(after, sizeof(after));
                assert_string_equal(before, after);
        } else {
                print_message("this kernel drops a netdev chain with its device\n");
                rule_handles(after, sizeof(after));
                assert_true(strlen(after) > 0);
        }
        assert_int_equal(ve_nft_guard_remove(instance, ifname, &err), 0);
        assert_null(strstr(guard_chain(), "ved-guard "));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_guard_sets),
                cmocka_unit_test(test_guard_kept),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
