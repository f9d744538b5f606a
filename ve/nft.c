/* nftables guards and NAT of VEs: the rules are described in nft.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "cleanup.h"
#include "nft.h"

/* libnftables keeps some process-wide state (its caches, the parser's symbol
 * tables); one batch at a time keeps worker threads from racing on it. */
static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

void ve_nft_table_name(const char *instance, char *buf, size_t len)
{
        snprintf(buf, len, "ved_%s", instance);
}

/* Names go into nft's grammar unquoted: allow only what ve_net_ifname() and an
 * instance name can hold, so nothing can end a statement early. */
static int check_name(const char *what, const char *s, struct ve_error *err)
{
        size_t len = s != NULL ? strlen(s) : 0;

        if (len == 0 || len > 15 || !isalpha((unsigned char)s[0]))
                return ve_error_set(err, EINVAL, "bad %s name '%s' for nftables", what,
                                    s != NULL ? s : "");
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
                        return ve_error_set(err, EINVAL, "bad %s name '%s' for nftables", what, s);
        return 0;
}

/* One address in the forms nft reads: text for the typed sets, and the 128-bit
 * integer for the neighbour advertisement targets (IPv6 only). */
struct nft_addr {
        int family;
        char text[INET6_ADDRSTRLEN];
        char hex[2 + 32 + 1];
};

static int parse_addr(const char *s, struct nft_addr *a, struct ve_error *err)
{
        unsigned char bytes[16];

        a->family = s != NULL && strchr(s, ':') != NULL ? AF_INET6 : AF_INET;
        if (s == NULL || inet_pton(a->family, s, bytes) != 1)
                return ve_error_set(err, VE_EINVAL_INPUT, "bad IP address '%s'", s ? s : "");
        inet_ntop(a->family, bytes, a->text, sizeof(a->text));
        strcpy(a->hex, "0x");
        for (int i = 0; a->family == AF_INET6 && i < 16; i++)
                snprintf(a->hex + 2 + 2 * i, 3, "%02x", bytes[i]);
        return 0;
}

/* One context for the process, under nft_lock: closing a context's netlink
 * socket waits for an RCU grace period (10-20 ms here), which a context per
 * batch paid on every VE start and address change. Its socket is O_CLOEXEC-less
 * (libmnl), like every fd the daemon holds: VE processes get none of them
 * (close_range before their execve). A context whose batch failed is dropped, so
 * a broken socket is not kept. */
static struct nft_ctx *shared_ctx;

/* Run one batch. The error nft prints (a parse or kernel error) goes into err. */
static int run_batch(const char *batch, const char *what, struct ve_error *err)
{
        const char *msg;
        int ret;

        pthread_mutex_lock(&nft_lock);
        if (shared_ctx == NULL) {
                shared_ctx = nft_ctx_new(NFT_CTX_DEFAULT);
                if (shared_ctx == NULL) {
                        pthread_mutex_unlock(&nft_lock);
                        return ve_error_set(err, ENOMEM, "%s: cannot make an nftables context",
                                            what);
                }
                nft_ctx_buffer_output(shared_ctx);
                nft_ctx_buffer_error(shared_ctx);
        }
        ret = nft_run_cmd_from_buffer(shared_ctx, batch);
        /* Reading a buffer also empties it for the next batch. */
        msg = nft_ctx_get_error_buffer(shared_ctx);
        (void)nft_ctx_get_output_buffer(shared_ctx);
        if (ret != 0) {
                ret = ve_error_set(err, EIO, "%s: nftables refused the change: %.*s", what,
                                   (int)strcspn(msg ? msg : "", "\n"), msg ? msg : "");
                nft_ctx_free(shared_ctx);
                shared_ctx = NULL;
        }
        pthread_mutex_unlock(&nft_lock);
        return ret;
}

/* A batch being written: a memstream, so its length is never a worry. */
struct batch {
        FILE *f;
        char *buf;
        size_t len;
};

static int batch_open(struct batch *b, struct ve_error *err)
{
        b->buf = NULL;
        b->f = open_memstream(&b->buf, &b->len);
        if (b->f == NULL)
                return ve_error_errno(err, errno, "open an nftables batch");
        return 0;
}

static int batch_run(struct batch *b, const char *what, struct ve_error *err)
{
        int ret;

        if (fclose(b->f) != 0) {
                b->f = NULL;
                return ve_error_errno(err, errno, "write an nftables batch");
        }
        b->f = NULL;
        ret = run_batch(b->buf, what, err);
        return ret;
}

static void batch_free(struct batch *b)
{
        if (b->f != NULL)
                fclose(b->f);
        free(b->buf);
}

#define _cleanup_batch_ __attribute__((cleanup(batch_free)))

/* Remove ifname's objects if present: the chain first (its rules hold the sets). */
static void put_remove(FILE *f, const char *table, const char *ifname)
{
        static const char *const sets[] = { "4", "6", "nd" };

        fprintf(f, "add table netdev %s\n", table);
        fprintf(f, "add chain netdev %s %s\n", table, ifname);
        fprintf(f, "delete chain netdev %s %s\n", table, ifname);
        for (size_t i = 0; i < 3; i++) {
                fprintf(f, "add set netdev %s %s_%s { %s; }\n", table, ifname, sets[i],
                        i == 0   ? "type ipv4_addr"
                        : i == 1 ? "type ipv6_addr"
                                 : "typeof @th,64,128");
                fprintf(f, "delete set netdev %s %s_%s\n", table, ifname, sets[i]);
        }
}

static const char *const set_types[] = { "type ipv4_addr", "type ipv6_addr", "typeof @th,64,128" };
static const char *const set_suffixes[] = { "4", "6", "nd" };

/* Declare ifname's three sets; with n > 0, with the elements of addrs in them.
 * Elements go in the set's declaration, not in "add element" commands: for those
 * libnftables first fetches the elements of the table's interval sets, a cost
 * that grew with every VE. */
static void put_sets(FILE *f, const char *table, const char *ifname, const struct nft_addr *addrs,
                     size_t n)
{
        for (int s = 0; s < 3; s++) {
                bool any = false;

                fprintf(f, "add set netdev %s %s_%s { %s; ", table, ifname, set_suffixes[s],
                        set_types[s]);
                for (size_t k = 0; k < n; k++) {
                        if ((s == 0) != (addrs[k].family == AF_INET))
                                continue;
                        fprintf(f, "%s%s", any ? ", " : "elements = { ",
                                s == 2 ? addrs[k].hex : addrs[k].text);
                        any = true;
                }
                fprintf(f, "%s}\n", any ? " } " : "");
        }
}

static void delete_elements(FILE *f, const char *table, const char *ifname,
                            const struct nft_addr *a)
{
        if (a->family == AF_INET) {
                fprintf(f, "delete element netdev %s %s_4 { %s }\n", table, ifname, a->text);
                return;
        }
        fprintf(f, "delete element netdev %s %s_6 { %s }\n", table, ifname, a->text);
        fprintf(f, "delete element netdev %s %s_nd { %s }\n", table, ifname, a->hex);
}

static void put_guard(FILE *f, const char *table, const char *ifname, const char *mac,
                      const struct nft_addr *addrs, size_t n)
{
        const char *t = table, *i = ifname;

        /* Flushing rather than deleting what a previous run may have left: adding
         * and deleting a base chain in one batch makes the kernel wait for an RCU
         * grace period, which a fresh start need not pay. */
        fprintf(f, "add table netdev %s\n", t);
        put_sets(f, t, i, NULL, 0);
        fprintf(f, "flush set netdev %s %s_4\n", t, i);
        fprintf(f, "flush set netdev %s %s_6\n", t, i);
        fprintf(f, "flush set netdev %s %s_nd\n", t, i);
        put_sets(f, t, i, addrs, n);
        fprintf(f,
                "add chain netdev %s %s { type filter hook ingress device \"%s\" priority -500; "
                "policy accept; }\n",
                t, i, i);
        fprintf(f, "flush chain netdev %s %s\n", t, i);
#define RULE(...)                                                                                  \
        do {                                                                                       \
                fprintf(f, "add rule netdev %s %s ", t, i);                                        \
                fprintf(f, __VA_ARGS__);                                                           \
                fputc('\n', f);                                                                    \
        } while (0)
        /* No anonymous sets ({ a, b }): each is a set of its own in the table, and
         * libnftables fetches the elements of every interval set before each batch
         * that touches elements, so they made every start and address change slower
         * by each VE already guarded. */
        RULE("ether saddr != %s drop", mac);
        RULE("meta protocol ip ip saddr != @%s_4 drop", i);
        RULE("meta protocol ip6 ip6 saddr :: meta l4proto != ipv6-icmp drop");
        RULE("meta protocol ip6 ip6 saddr fe80::/10 meta l4proto != ipv6-icmp drop");
        RULE("meta protocol ip6 ip6 saddr != :: ip6 saddr != fe80::/10 ip6 saddr != @%s_6 drop", i);
        RULE("meta protocol ip6 icmpv6 type nd-neighbor-advert @th,64,128 != @%s_nd drop", i);
        RULE("meta protocol arp arp saddr ip != 0.0.0.0 arp saddr ip != @%s_4 drop", i);
        RULE("meta protocol arp arp saddr ether != %s drop", mac);
        RULE("meta protocol != ip meta protocol != ip6 meta protocol != arp drop");
#undef RULE
}

int ve_nft_guard_install(const char *instance, const char *ifname, const uint8_t mac[6],
                         const char *const *addrs, size_t n_addrs, struct ve_error *err)
{
        _cleanup_batch_ struct batch b = { 0 };
        _cleanup_free_ struct nft_addr *a = NULL;
        char table[VE_NFT_TABLE_LEN], macs[18], what[64];
        int ret;

        snprintf(what, sizeof(what), "guard of %s", ifname ? ifname : "");
        ret = check_name("instance", instance, err);
        if (ret == 0)
                ret = check_name("interface", ifname, err);
        if (ret < 0)
                return ret;
        ve_nft_table_name(instance, table, sizeof(table));
        snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                 mac[3], mac[4], mac[5]);
        a = calloc(n_addrs ? n_addrs : 1, sizeof(*a));
        if (a == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        for (size_t k = 0; k < n_addrs; k++) {
                ret = parse_addr(addrs[k], &a[k], err);
                if (ret < 0)
                        return ret;
        }
        ret = batch_open(&b, err);
        if (ret < 0)
                return ret;
        put_guard(b.f, table, ifname, macs, a, n_addrs);
        return batch_run(&b, what, err);
}

int ve_nft_guard_addr(const char *instance, const char *ifname, bool add, const char *addr,
                      struct ve_error *err)
{
        _cleanup_batch_ struct batch b = { 0 };
        char table[VE_NFT_TABLE_LEN], what[96];
        struct nft_addr a;
        int ret;

        ret = check_name("instance", instance, err);
        if (ret == 0)
                ret = check_name("interface", ifname, err);
        if (ret == 0)
                ret = parse_addr(addr, &a, err);
        if (ret < 0)
                return ret;
        snprintf(what, sizeof(what), "%s %s on the guard of %s", add ? "allow" : "forbid", a.text,
                 ifname);
        ve_nft_table_name(instance, table, sizeof(table));
        ret = batch_open(&b, err);
        if (ret < 0)
                return ret;
        /* Declaring the sets (a no-op when they exist) keeps a VE whose guard is
         * missing changeable; adding first makes deleting an absent element a no-op. */
        fprintf(b.f, "add table netdev %s\n", table);
        put_sets(b.f, table, ifname, &a, 1);
        if (!add)
                delete_elements(b.f, table, ifname, &a);
        return batch_run(&b, what, err);
}

int ve_nft_guard_remove(const char *instance, const char *ifname, struct ve_error *err)
{
        _cleanup_batch_ struct batch b = { 0 };
        char table[VE_NFT_TABLE_LEN], what[64];
        int ret;

        ret = check_name("instance", instance, err);
        if (ret == 0)
                ret = check_name("interface", ifname, err);
        if (ret < 0)
                return ret;
        snprintf(what, sizeof(what), "remove the guard of %s", ifname);
        ve_nft_table_name(instance, table, sizeof(table));
        ret = batch_open(&b, err);
        if (ret < 0)
                return ret;
        put_remove(b.f, table, ifname);
        return batch_run(&b, what, err);
}

/* subnet is "a.b.c.d/len" (8-30) or an IPv6 "prefix/len" (16-126); checked so it
 * cannot carry nft syntax. */
static int check_subnet(int family, const char *subnet, struct ve_error *err)
{
        char buf[INET6_ADDRSTRLEN + 5];
        unsigned char bytes[16];
        char *slash, *end;
        long len;

        if (subnet == NULL || strlen(subnet) >= sizeof(buf))
                return ve_error_set(err, VE_EINVAL_INPUT, "bad subnet '%s'", subnet ? subnet : "");
        strcpy(buf, subnet);
        slash = strchr(buf, '/');
        if (slash == NULL)
                return ve_error_set(err, VE_EINVAL_INPUT, "subnet '%s' has no /length", subnet);
        *slash++ = '\0';
        len = strtol(slash, &end, 10);
        if (inet_pton(family, buf, bytes) != 1 || *end != '\0' || end == slash ||
            len < (family == AF_INET ? 8 : 16) || len > (family == AF_INET ? 30 : 126))
                return ve_error_set(err, VE_EINVAL_INPUT, "bad subnet '%s'", subnet);
        return 0;
}

int ve_nft_nat_install(const char *instance, const char *subnet, const char *subnet6,
                       const char *bridge, struct ve_error *err)
{
        _cleanup_batch_ struct batch b = { 0 };
        char table[VE_NFT_TABLE_LEN];
        int ret;

        ret = check_name("instance", instance, err);
        if (ret == 0)
                ret = check_name("bridge", bridge, err);
        if (ret == 0)
                ret = check_subnet(AF_INET, subnet, err);
        if (ret == 0 && subnet6 != NULL)
                ret = check_subnet(AF_INET6, subnet6, err);
        if (ret < 0)
                return ret;
        ve_nft_table_name(instance, table, sizeof(table));
        ret = batch_open(&b, err);
        if (ret < 0)
                return ret;
        fprintf(b.f, "add table inet %s\n", table);
        fprintf(b.f, "add chain inet %s nat_%s\n", table, bridge);
        fprintf(b.f, "delete chain inet %s nat_%s\n", table, bridge);
        fprintf(b.f,
                "add chain inet %s nat_%s { type nat hook postrouting priority srcnat; "
                "policy accept; }\n",
                table, bridge);
        fprintf(b.f, "add rule inet %s nat_%s ip saddr %s oifname != \"%s\" masquerade\n", table,
                bridge, subnet, bridge);
        if (subnet6 != NULL)
                fprintf(b.f, "add rule inet %s nat_%s ip6 saddr %s oifname != \"%s\" masquerade\n",
                        table, bridge, subnet6, bridge);
        return batch_run(&b, "install the NAT of the bridged VEs", err);
}

int ve_nft_tables_remove(const char *instance, struct ve_error *err)
{
        char table[VE_NFT_TABLE_LEN], batch[256];
        int ret;

        ret = check_name("instance", instance, err);
        if (ret < 0)
                return ret;
        ve_nft_table_name(instance, table, sizeof(table));
        snprintf(batch, sizeof(batch),
                 "add table netdev %s\ndelete table netdev %s\n"
                 "add table inet %s\ndelete table inet %s\n",
                 table, table, table, table);
        return run_batch(batch, "remove the nftables tables", err);
}
