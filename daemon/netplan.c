#include "netplan.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runtime.h"
#include "ve/nft.h"
#include "ve/parse.h"

struct ved_netplan {
        char instance[16];
        uint32_t ctid;
        char **addrs; /* without prefix, NULL-terminated */
        size_t n_addrs;
        const char *const *uplinks; /* the daemon's configuration: immutable */
        size_t n_uplinks;
        unsigned int rate_mbit;
        bool bridged;
        bool own_bridge; /* the daemon's <instance>0: made on demand, with NAT */
        char bridge[VE_NET_IFNAME_LEN];
        char ve_ifname[VE_NET_IFNAME_LEN];
        uint8_t mac[6], host_mac[6];
        bool have_mac, have_host_mac;
        char gateway[INET_ADDRSTRLEN + 4]; /* "10.199.0.1/24" of the own bridge */
        char gw4[INET6_ADDRSTRLEN];        /* "10.199.0.1" */
        unsigned int prefix4;
        char subnet[VE_SUBNET_TEXT_LEN];     /* "10.199.0.0/24", for NAT */
        char gateway6[INET6_ADDRSTRLEN + 5]; /* "fd00:199::1/64"; "" without IPv6 */
        char gw6[INET6_ADDRSTRLEN];          /* "fd00:199::1" */
        unsigned int prefix6;
        char subnet6[VE_SUBNET_TEXT_LEN]; /* "fd00:199::/64", for NAT */
};

/* --- validation ------------------------------------------------------------ */

static bool ifname_ok(const char *s)
{
        size_t len = strlen(s);

        if (len == 0 || len >= VE_NET_IFNAME_LEN || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) == NULL)
                        return false;
        return true;
}

/* A unicast MAC other than all zeros, "02:00:00:aa:bb:cc". */
static int parse_mac(const char *s, uint8_t mac[6])
{
        unsigned int b[6];
        char end;

        if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                   &end) != 6 ||
            strlen(s) != 17)
                return -EINVAL;
        for (int i = 0; i < 6; i++)
                mac[i] = (uint8_t)b[i];
        if ((mac[0] & 1) || (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0)
                return -EINVAL;
        return 0;
}

static json_t *netif_from_text(const char *s, struct ve_error *err)
{
        static const char *const keys[] = { "ifname", "mac", "host_ifname", "host_mac", "bridge" };
        char buf[128], *p = buf, *field;
        json_t *o = json_object();

        if (strlen(s) >= sizeof(buf)) {
                ve_error_set(err, VE_EINVAL_INPUT, "netif '%.40s...' is too long", s);
                json_decref(o);
                return NULL;
        }
        strcpy(buf, s);
        for (size_t i = 0; (field = strsep(&p, ",")) != NULL; i++) {
                if (i >= 5) {
                        ve_error_set(err, VE_EINVAL_INPUT,
                                     "netif '%s': at most ifname,mac,host_ifname,host_mac,bridge",
                                     s);
                        json_decref(o);
                        return NULL;
                }
                if (*field != '\0')
                        json_object_set_new(o, keys[i], json_string(field));
        }
        return o;
}

static int check_netif_field(const char *key, json_t *v, struct ve_error *err)
{
        uint8_t mac[6];
        const char *s = json_string_value(v);

        if (s == NULL)
                return ve_error_set(err, VE_EINVAL_INPUT, "netif.%s must be a string", key);
        if (strcmp(key, "mac") == 0 || strcmp(key, "host_mac") == 0) {
                if (parse_mac(s, mac) < 0)
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "netif.%s '%s' is not a unicast MAC such as "
                                            "02:00:00:00:01:65",
                                            key, s);
                return 0;
        }
        if (strcmp(key, "host_ifname") == 0)
                return *s == '\0' ? 0
                                  : ve_error_set(err, VE_EINVAL_INPUT,
                                                 "netif.host_ifname: ved names the host side "
                                                 "itself (<instance><ctid>); leave it empty");
        if (!ifname_ok(s) || (strcmp(key, "ifname") == 0 && strcmp(s, "lo") == 0))
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "netif.%s '%s' is not an interface name (1-15 of "
                                    "A-Z a-z 0-9 _ . -)",
                                    key, s);
        return 0;
}

static json_t *norm_netif(json_t *value, struct ve_error *err)
{
        static const char *const keys[] = { "ifname", "mac", "host_ifname", "host_mac", "bridge" };
        json_t *in, *out, *v;
        const char *key;

        in = json_is_string(value) ? netif_from_text(json_string_value(value), err)
                                   : json_incref(value);
        if (in == NULL)
                return NULL;
        if (!json_is_object(in)) {
                ve_error_set(err, VE_EINVAL_INPUT,
                             "netif must be an object or \"ifname[,mac,host_ifname,host_mac,"
                             "bridge]\"");
                json_decref(in);
                return NULL;
        }
        out = json_object();
        json_object_foreach(in, key, v)
        {
                bool known = false;

                for (size_t i = 0; i < 5; i++)
                        known = known || strcmp(key, keys[i]) == 0;
                if (!known) {
                        ve_error_set(err, VE_EINVAL_INPUT, "netif: unknown field '%s'", key);
                        goto bad;
                }
                if (check_netif_field(key, v, err) < 0)
                        goto bad;
                if (strcmp(key, "host_ifname") != 0)
                        json_object_set(out, key, v);
        }
        if (json_object_get(out, "ifname") == NULL)
                json_object_set_new(out, "ifname", json_string(VE_NET_VE_IFNAME));
        json_decref(in);
        return out;
bad:
        json_decref(in);
        json_decref(out);
        return NULL;
}

json_t *ved_netif_normalize(const char *key, bool netif, json_t *value, struct ve_error *err)
{
        if (netif)
                return norm_netif(value, err);
        if (!json_is_string(value) || !ifname_ok(json_string_value(value))) {
                ve_error_set(err, VE_EINVAL_INPUT,
                             "%s must be an interface name (1-15 of A-Z a-z 0-9 _ . -)", key);
                return NULL;
        }
        return json_incref(value);
}

/* --- the plan ---------------------------------------------------------------- */

static const char *str(json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

/* The own bridge's subnets from the configuration (checked when read):
 * "10.199.0.1/24" -> gw4 "10.199.0.1", prefix4 24, subnet "10.199.0.0/24"; the
 * same for IPv6 into gw6, prefix6, subnet6, gateway6 (all "" without one). */
static void own_bridge_subnets(struct ved_netplan *p, const char *cidr, const char *cidr6)
{
        struct ve_subnet s;

        if (cidr != NULL && ve_parse_subnet(cidr, AF_INET, &s) == 0) {
                snprintf(p->gateway, sizeof(p->gateway), "%s", cidr);
                snprintf(p->gw4, sizeof(p->gw4), "%s", s.addr);
                p->prefix4 = s.prefix;
                snprintf(p->subnet, sizeof(p->subnet), "%s", s.network);
        }
        if (cidr6 != NULL && ve_parse_subnet(cidr6, AF_INET6, &s) == 0) {
                snprintf(p->gw6, sizeof(p->gw6), "%s", s.addr);
                p->prefix6 = s.prefix;
                snprintf(p->subnet6, sizeof(p->subnet6), "%s", s.network);
                snprintf(p->gateway6, sizeof(p->gateway6), "%s", cidr6);
        }
}

static void plan_bridged(struct ved_netplan *p, struct ved *v, json_t *ve, json_t *netif)
{
        const char *bridge = str(netif, "bridge");

        p->bridged = true;
        if (bridge == NULL)
                bridge = str(ve, "bridge");
        if (bridge == NULL) {
                snprintf(p->bridge, sizeof(p->bridge), "%s0", v->cfg.instance);
                p->own_bridge = true;
        } else {
                snprintf(p->bridge, sizeof(p->bridge), "%s", bridge);
        }
        snprintf(p->ve_ifname, sizeof(p->ve_ifname), "%s",
                 str(netif, "ifname") ? str(netif, "ifname") : VE_NET_VE_IFNAME);
        p->have_mac = str(netif, "mac") && parse_mac(str(netif, "mac"), p->mac) == 0;
        p->have_host_mac =
            str(netif, "host_mac") && parse_mac(str(netif, "host_mac"), p->host_mac) == 0;
        if (p->own_bridge)
                own_bridge_subnets(p, v->cfg.bridge_subnet, v->cfg.bridge_subnet6);
}

void ved_netplan_macs(struct ved *v, uint32_t ctid, json_t *netif, uint8_t mac[6],
                      uint8_t host_mac[6])
{
        if (!str(netif, "mac") || parse_mac(str(netif, "mac"), mac) < 0)
                ve_net_mac(v->cfg.instance, ctid, false, mac);
        if (!str(netif, "host_mac") || parse_mac(str(netif, "host_mac"), host_mac) < 0)
                ve_net_mac(v->cfg.instance, ctid, true, host_mac);
}

struct ved_netplan *ved_netplan_new(struct ved *v, json_t *ve)
{
        struct ved_netplan *p = calloc(1, sizeof(*p));
        json_t *netif = json_object_get(ve, "netif");

        if (p == NULL)
                return NULL;
        snprintf(p->instance, sizeof(p->instance), "%s", v->cfg.instance);
        p->ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        p->addrs = ved_ip_list(json_object_get(ve, "ip"), &p->n_addrs);
        p->uplinks = (const char *const *)v->cfg.uplinks;
        p->n_uplinks = v->cfg.n_uplinks;
        p->rate_mbit = (unsigned int)json_integer_value(json_object_get(ve, "rate"));
        if (json_is_object(netif))
                plan_bridged(p, v, ve, netif);
        if (p->addrs == NULL) {
                ved_netplan_free(p);
                return NULL;
        }
        return p;
}

/* Whether addr ("ADDR", or "ADDR/PREFIX") is one no host of the subnet of gw
 * ("10.199.0.1") / prefix may take: the gateway itself, the network's own
 * address (IPv6's subnet-router anycast), or IPv4's broadcast. */
static bool subnet_reserved(int family, const char *gw, unsigned prefix, const char *addr)
{
        unsigned char g[16], a[16];
        char host[INET6_ADDRSTRLEN + 1];
        unsigned len = family == AF_INET ? 4 : 16;
        bool zeros = true, ones = true;

        snprintf(host, sizeof(host), "%.*s", (int)strcspn(addr, "/"), addr);
        if (gw[0] == '\0' || inet_pton(family, gw, g) != 1 || inet_pton(family, host, a) != 1)
                return false;
        for (unsigned bit = 0; bit < len * 8; bit++) {
                unsigned mask = 0x80u >> (bit % 8);
                bool ab = a[bit / 8] & mask;

                if (bit < prefix) {
                        if (ab != (bool)(g[bit / 8] & mask))
                                return false; /* outside the subnet */
                        continue;
                }
                zeros = zeros && !ab;
                ones = ones && ab;
        }
        return memcmp(a, g, len) == 0 || (prefix < len * 8 && zeros) ||
               (family == AF_INET && prefix < 31 && ones);
}

int ved_netplan_check_addrs(struct ved *v, json_t *ve, struct ve_error *err)
{
        struct ved_netplan *p = ved_netplan_new(v, ve);
        int ret = 0;

        if (p == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; p->own_bridge && i < p->n_addrs && ret == 0; i++) {
                bool v6 = strchr(p->addrs[i], ':') != NULL;

                if (subnet_reserved(v6 ? AF_INET6 : AF_INET, v6 ? p->gw6 : p->gw4,
                                    v6 ? p->prefix6 : p->prefix4, p->addrs[i]))
                        ret = ve_error_set(err, VE_EINVAL_INPUT,
                                           "address %s is the gateway, network or broadcast "
                                           "address of bridge %s (%s)",
                                           p->addrs[i], p->bridge, v6 ? p->gateway6 : p->gateway);
        }
        ved_netplan_free(p);
        return ret;
}

void ved_netplan_free(struct ved_netplan *p)
{
        if (p == NULL)
                return;
        ved_ip_list_free(p->addrs);
        free(p);
}

void ved_netplan_config(const struct ved_netplan *p, pid_t pid, struct ve_net_config *cfg,
                        struct ve_net_bridged *b)
{
        *cfg = (struct ve_net_config){
                .instance = p->instance,
                .ctid = p->ctid,
                .pid = pid,
                .netns_fd = -EBADF,
                .addrs = (const char *const *)p->addrs,
                .n_addrs = p->n_addrs,
                .uplinks = p->uplinks,
                .n_uplinks = p->n_uplinks,
                .rate_mbit = p->rate_mbit,
        };
        if (!p->bridged)
                return;
        *b = (struct ve_net_bridged){
                .bridge = p->bridge,
                .ve_ifname = p->ve_ifname,
                .mac = p->have_mac ? p->mac : NULL,
                .host_mac = p->have_host_mac ? p->host_mac : NULL,
                .gateway4 = p->gw4[0] != '\0' ? p->gw4 : NULL,
                .prefix4 = p->prefix4,
                .gateway6 = p->gw6[0] != '\0' ? p->gw6 : NULL,
                .prefix6 = p->prefix6,
        };
        cfg->bridged = b;
}

/* The daemon's bridge, its gateway address and the NAT of its subnet. */
static int ensure_own_bridge(const struct ved_netplan *p, struct ve_error *err)
{
        int ret;

        if (p->gateway[0] == '\0' || p->subnet[0] == '\0')
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "VE %u is bridged on %s, but ved has no bridge-subnet: set "
                                    "bridge-subnet (e.g. 10.199.0.1/24) in ved.conf",
                                    p->ctid, p->bridge);
        ret = ve_net_bridge_ensure(p->bridge, p->gateway,
                                   p->gateway6[0] != '\0' ? p->gateway6 : NULL, err);
        if (ret == 0)
                ret = ve_nft_nat_install(p->instance, p->subnet,
                                         p->subnet6[0] != '\0' ? p->subnet6 : NULL, p->bridge, err);
        return ret;
}

int ved_netplan_setup(const struct ved_netplan *p, pid_t pid, struct ve_error *err)
{
        struct ve_net_config cfg;
        struct ve_net_bridged b;
        int ret;

        if (p == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        if (p->own_bridge) {
                ret = ensure_own_bridge(p, err);
                if (ret < 0)
                        return ve_error_prefix(err, "network of VE %u", p->ctid);
        }
        ved_netplan_config(p, pid, &cfg, &b);
        return ve_net_setup(&cfg, err);
}

/* --- live changes, exit -------------------------------------------------------- */

int ved_net_patch(struct ved *v, uint32_t ctid, json_t *changes, struct ve_error *err)
{
        json_t *rate = json_object_get(changes, "rate");
        struct ved_rt *rt = ved_rt_find(v, ctid);

        if (rt == NULL || rt->exited)
                return 0;
        if (json_object_get(changes, "netif") != NULL || json_object_get(changes, "bridge") != NULL)
                return ve_error_set(err, VE_ECONFLICT,
                                    "VE %u is running: stop it to change its netif or bridge",
                                    ctid);
        if (rate == NULL)
                return 0;
        return ve_net_rate_set(v->cfg.instance, ctid, (unsigned int)json_integer_value(rate), err);
}

void ved_net_init(struct ved *v)
{
        struct ve_error err = { 0 };

        /* Running VEs (routed and NATed) need their uplinks forwarding now, not
         * only at the next start. */
        if (ve_net_host_prepare((const char *const *)v->cfg.uplinks, v->cfg.n_uplinks, &err) < 0)
                log_warn("Uplinks: %s", err.message);
        ve_error_clear(&err);
}

void ved_net_exit(struct ved *v)
{
        static const char *const live[] = { "running", "suspended", "starting", "stopping" };
        struct ve_error err = { 0 };
        char bridge[VE_NET_IFNAME_LEN];
        int n;

        /* VEs outlive the daemon, and their guards and bridge must stay with them. */
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
                n = ved_store_ve_count(&v->store, live[i]);
                if (n != 0)
                        return;
        }
        if (ve_nft_tables_remove(v->cfg.instance, &err) < 0)
                log_warn("Cannot remove the nftables tables: %s", err.message);
        ve_error_clear(&err);
        snprintf(bridge, sizeof(bridge), "%s0", v->cfg.instance);
        if (v->cfg.bridge_subnet != NULL && ve_net_bridge_remove(bridge, &err) < 0)
                log_warn("Cannot remove bridge %s: %s", bridge, err.message);
        ve_error_clear(&err);
}
