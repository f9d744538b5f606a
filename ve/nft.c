/* nftables guards and NAT of VEs: the rules are described in nft.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <nftables/libnftables.h>

#include "cleanup.h"
#include "nft.h"
#include "parse.h"

/* libnftables keeps some process-wide state (its caches, the parser's symbol
 * tables); one batch at a time keeps worker threads from racing on it. Recursive:
 * a guard change holds it from reading the kernel's rules to running its batch. */
static pthread_mutex_t nft_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void ve_nft_table_name(const char *instance, char *buf, size_t len)
{
        snprintf(buf, len, "ved_%s", instance);
}

/* Names go into nft's grammar unquoted: allow only what ve_net_ifname() and an
 * instance name can hold, so nothing can end a statement early; with dot, also
 * '.' (ve_net_ifb_name(), only ever quoted). */
static int check_name_dot(const char *what, const char *s, bool dot, struct ve_error *err)
{
        size_t len = s != NULL ? strlen(s) : 0;

        if (len == 0 || len > 15 || !isalpha((unsigned char)s[0]))
                return ve_error_set(err, EINVAL, "bad %s name '%s' for nftables", what,
                                    s != NULL ? s : "");
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' &&
                    !(dot && s[i] == '.'))
                        return ve_error_set(err, EINVAL, "bad %s name '%s' for nftables", what, s);
        return 0;
}

static int check_name(const char *what, const char *s, struct ve_error *err)
{
        return check_name_dot(what, s, false, err);
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

/* Remove ifname's rate chain if present. */
static void put_rate_remove(FILE *f, const char *table, const char *ifname)
{
        fprintf(f, "add chain netdev %s %s_rate\n", table, ifname);
        fprintf(f, "delete chain netdev %s %s_rate\n", table, ifname);
}

/* Remove ifname's objects if present: the chains first (the guard's rules hold
 * the sets). */
static void put_remove(FILE *f, const char *table, const char *ifname)
{
        static const char *const sets[] = { "4", "6", "nd" };

        fprintf(f, "add table netdev %s\n", table);
        put_rate_remove(f, table, ifname);
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
#undef RULE
}

/* The guard's last rule, with the mark (NULL: none): every other ethertype. */
static void put_last_rule(FILE *f, const char *table, const char *ifname, const char *mark)
{
        fprintf(f,
                "add rule netdev %s %s meta protocol != ip meta protocol != ip6 "
                "meta protocol != arp drop",
                table, ifname);
        if (mark != NULL)
                fprintf(f, " comment \"%s\"", mark);
        fputc('\n', f);
}

/* FNV-1a, 64 bits: a fingerprint of a guard's batch, not a defence. */
static uint64_t fingerprint(const char *s, size_t len)
{
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < len; i++) {
                h ^= (unsigned char)s[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

/* A guard's last rule is marked "ved-guard <fingerprint of its batch>". */
#define MARK_PREFIX "ved-guard "

/* What a dump of one chain's rules says of the marked rule. */
struct mark_search {
        const char *mark; /* the exact mark looked for, or NULL */
        bool exact;       /* the marked rule carries it */
        uint64_t handle;  /* the marked rule's handle; 0: none */
};

static int mark_cb(struct nl_msg *msg, void *arg)
{
        struct mark_search *m = arg;
        struct nlattr *tb[NFTA_RULE_MAX + 1];
        struct nlattr *ud;
        size_t len;

        if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct nfgenmsg), tb, NFTA_RULE_MAX, NULL) < 0)
                return NL_SKIP;
        ud = tb[NFTA_RULE_USERDATA];
        /* nft keeps a rule's comment as a type-length-value record in its user
         * data: the mark's text is in there as it is. */
        len = ud != NULL ? (size_t)nla_len(ud) : 0;
        if (len == 0 || tb[NFTA_RULE_HANDLE] == NULL ||
            memmem(nla_data(ud), len, MARK_PREFIX, strlen(MARK_PREFIX)) == NULL)
                return NL_OK;
        m->handle = be64toh(nla_get_u64(tb[NFTA_RULE_HANDLE]));
        if (m->mark != NULL && memmem(nla_data(ud), len, m->mark, strlen(m->mark)) != NULL)
                m->exact = true;
        return NL_OK;
}

/* One netfilter netlink socket for the process, under nft_lock, kept for the
 * reason shared_ctx is; dropped after a failure. */
static struct nl_sock *query_sk;

/* Look for the marked rule of chain ifname in netdev table (m->mark: the exact
 * mark wanted, or NULL). The guard an earlier batch installed is there whole
 * when its mark is (a batch applies entirely or not at all); a live change of its
 * sets takes the mark away (ve_nft_guard_addr()). Any doubt (no table, no chain,
 * an error) finds nothing. Caller holds nft_lock. */
static void find_mark(const char *table, const char *ifname, struct mark_search *m)
{
        struct nfgenmsg g = { .nfgen_family = NFPROTO_NETDEV, .version = NFNETLINK_V0 };
        struct nl_msg *msg;
        int ret = -1;

        if (query_sk == NULL) {
                query_sk = nl_socket_alloc();
                if (query_sk == NULL)
                        return;
                if (nl_connect(query_sk, NETLINK_NETFILTER) < 0) {
                        nl_socket_free(query_sk);
                        query_sk = NULL;
                        return;
                }
        }
        msg = nlmsg_alloc_simple((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE,
                                 NLM_F_REQUEST | NLM_F_DUMP);
        if (msg != NULL && nlmsg_append(msg, &g, sizeof(g), NLMSG_ALIGNTO) == 0 &&
            nla_put_string(msg, NFTA_RULE_TABLE, table) == 0 &&
            nla_put_string(msg, NFTA_RULE_CHAIN, ifname) == 0 && nl_send_auto(query_sk, msg) >= 0) {
                nl_socket_modify_cb(query_sk, NL_CB_VALID, NL_CB_CUSTOM, mark_cb, m);
                ret = nl_recvmsgs_default(query_sk);
        }
        nlmsg_free(msg);
        /* A missing table or chain is an error message, which leaves the socket
         * as good as new; anything else may have left a reply unread. */
        if (ret < 0 && ret != -NLE_OBJ_NOTFOUND) {
                nl_socket_free(query_sk);
                query_sk = NULL;
        }
        if (ret < 0) {
                m->exact = false;
                m->handle = 0;
        }
}

/* The start of a batch on ifname's objects: checked names, the table's name,
 * the batch opened. */
static int begin_batch(struct batch *b, const char *instance, const char *ifname,
                       char table[VE_NFT_TABLE_LEN], struct ve_error *err)
{
        int ret;

        ret = check_name("instance", instance, err);
        if (ret == 0)
                ret = check_name("interface", ifname, err);
        if (ret < 0)
                return ret;
        ve_nft_table_name(instance, table, VE_NFT_TABLE_LEN);
        return batch_open(b, err);
}

int ve_nft_guard_install(const char *instance, const char *ifname, const uint8_t mac[6],
                         const char *const *addrs, size_t n_addrs, struct ve_error *err)
{
        _cleanup_batch_ struct batch b = { 0 };
        _cleanup_free_ struct nft_addr *a = NULL;
        char table[VE_NFT_TABLE_LEN], macs[18], what[64], mark[32];
        struct mark_search m = { .mark = mark };
        int ret;

        snprintf(what, sizeof(what), "guard of %s", ifname ? ifname : "");
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
        ret = begin_batch(&b, instance, ifname, table, err);
        if (ret < 0)
                return ret;
        put_guard(b.f, table, ifname, macs, a, n_addrs);
        if (fflush(b.f) != 0)
                return ve_error_errno(err, errno, "write an nftables batch");
        /* The last rule carries a fingerprint of the whole batch: a guard kept
         * from the VE's previous run (a netdev chain outlives its device since
         * Linux 6.16, and is bound again when a device of its name appears) is
         * left alone when nothing in it would change. */
        snprintf(mark, sizeof(mark), MARK_PREFIX "%016" PRIx64, fingerprint(b.buf, b.len));
        put_last_rule(b.f, table, ifname, mark);
        pthread_mutex_lock(&nft_lock);
        find_mark(table, ifname, &m);
        ret = m.exact ? 0 : batch_run(&b, what, err);
        pthread_mutex_unlock(&nft_lock);
        return ret;
}

int ve_nft_guard_addr(const char *instance, const char *ifname, bool add, const char *addr,
                      struct ve_error *err)
{
        _cleanup_batch_ struct batch b = { 0 };
        char table[VE_NFT_TABLE_LEN], what[96];
        struct mark_search m = { .mark = NULL };
        struct nft_addr a;
        int ret;

        ret = parse_addr(addr, &a, err);
        if (ret == 0)
                ret = begin_batch(&b, instance, ifname, table, err);
        if (ret < 0)
                return ret;
        snprintf(what, sizeof(what), "%s %s on the guard of %s", add ? "allow" : "forbid", a.text,
                 ifname);
        /* Declaring the sets (a no-op when they exist) keeps a VE whose guard is
         * missing changeable; adding first makes deleting an absent element a no-op. */
        fprintf(b.f, "add table netdev %s\n", table);
        put_sets(b.f, table, ifname, &a, 1);
        if (!add)
                delete_elements(b.f, table, ifname, &a);
        /* The guard no longer is what its mark says: the same batch swaps the
         * marked last rule for an unmarked one, so the next start builds the
         * guard again from the VE's record, whatever happens after this. */
        pthread_mutex_lock(&nft_lock);
        find_mark(table, ifname, &m);
        if (m.handle != 0) {
                fprintf(b.f, "delete rule netdev %s %s handle %" PRIu64 "\n", table, ifname,
                        m.handle);
                put_last_rule(b.f, table, ifname, NULL);
        }
        ret = batch_run(&b, what, err);
        pthread_mutex_unlock(&nft_lock);
        return ret;
}

int ve_nft_guard_remove(const char *instance, const char *ifname, struct ve_error *err)
{
        _cleanup_batch_ struct batch b = { 0 };
        char table[VE_NFT_TABLE_LEN], what[64];
        int ret;

        ret = begin_batch(&b, instance, ifname, table, err);
        if (ret < 0)
                return ret;
        snprintf(what, sizeof(what), "remove the guard of %s", ifname);
        put_remove(b.f, table, ifname);
        return batch_run(&b, what, err);
}

int ve_nft_rate_fwd(const char *instance, const char *ifname, const char *ifb, struct ve_error *err)
{
        _cleanup_batch_ struct batch b = { 0 };
        char table[VE_NFT_TABLE_LEN], what[64];
        int ret;

        ret = ifb != NULL ? check_name_dot("interface", ifb, true, err) : 0;
        if (ret == 0)
                ret = begin_batch(&b, instance, ifname, table, err);
        if (ret < 0)
                return ret;
        snprintf(what, sizeof(what), "rate chain of %s", ifname);
        fprintf(b.f, "add table netdev %s\n", table);
        if (ifb == NULL) {
                put_rate_remove(b.f, table, ifname);
                return batch_run(&b, what, err);
        }
        fprintf(b.f,
                "add chain netdev %s %s_rate { type filter hook ingress device \"%s\" "
                "priority -400; policy accept; }\n",
                table, ifname, ifname);
        fprintf(b.f, "flush chain netdev %s %s_rate\n", table, ifname);
        fprintf(b.f, "add rule netdev %s %s_rate fwd to \"%s\"\n", table, ifname, ifb);
        return batch_run(&b, what, err);
}

/* subnet is "a.b.c.d/len" (8-30) or an IPv6 "prefix/len" (16-126); checked so it
 * cannot carry nft syntax. */
static int check_subnet(int family, const char *subnet, struct ve_error *err)
{
        struct ve_subnet s;

        if (ve_parse_subnet(subnet, family, &s) < 0)
                return ve_error_set(err, VE_EINVAL_INPUT, "bad subnet '%s'", subnet ? subnet : "");
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
