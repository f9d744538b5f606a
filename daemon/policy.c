#include "policy.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

#include "netplan.h"
#include "ve/parse.h"

/* The address part of "a.b.c.d/nn". */
static void strip_prefix(const char *ip, char *out, size_t len)
{
        size_t n = strcspn(ip, "/");

        if (n >= len)
                n = len - 1;
        memcpy(out, ip, n);
        out[n] = '\0';
}

/* The name of the host interface holding addr, if any, in ifname. */
static int host_holder(const char *addr, char *ifname, size_t len)
{
        struct ifaddrs *ifa = NULL, *i;
        char text[INET6_ADDRSTRLEN];
        int found = 0;

        if (getifaddrs(&ifa) < 0)
                return 0;
        for (i = ifa; i != NULL && !found; i = i->ifa_next) {
                const void *a;

                if (i->ifa_addr == NULL)
                        continue;
                if (i->ifa_addr->sa_family == AF_INET)
                        a = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
                else if (i->ifa_addr->sa_family == AF_INET6)
                        a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
                else
                        continue;
                if (inet_ntop(i->ifa_addr->sa_family, a, text, sizeof(text)) &&
                    strcmp(text, addr) == 0) {
                        snprintf(ifname, len, "%s", i->ifa_name);
                        found = 1;
                }
        }
        freeifaddrs(ifa);
        return found;
}

int ved_policy_check_ips(struct ved *v, uint32_t ctid, json_t *ips, struct ve_error *err)
{
        char addr[64], ifname[IF_NAMESIZE + 1];
        size_t i;
        json_t *ip;

        json_array_foreach(ips, i, ip)
        {
                int64_t holder;

                strip_prefix(json_string_value(ip), addr, sizeof(addr));
                holder = ved_store_ip_holder(&v->store, addr, ctid);
                if (holder > 0)
                        return ve_error_set(err, VE_ECONFLICT,
                                            "address %s is already used by VE %lld", addr,
                                            (long long)holder);
                if (host_holder(addr, ifname, sizeof(ifname)))
                        return ve_error_set(err, VE_ECONFLICT,
                                            "address %s is already used by the host (%s)", addr,
                                            ifname);
        }
        return 0;
}

int ved_policy_check_macs(struct ved *v, uint32_t ctid, json_t *netif, struct ve_error *err)
{
        uint8_t mine[2][6], theirs[2][6];
        json_t *ves = NULL, *ve;
        size_t i;
        int ret;

        if (!json_is_object(netif))
                return 0;
        ved_netplan_macs(v, ctid, netif, mine[0], mine[1]);
        ret = ved_store_ve_list(&v->store, NULL, NULL, &ves, err);
        if (ret < 0)
                return ret;
        json_array_foreach(ves, i, ve)
        {
                uint32_t other = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
                json_t *their_netif = json_object_get(ve, "netif");

                if (other == ctid || !json_is_object(their_netif))
                        continue;
                ved_netplan_macs(v, other, their_netif, theirs[0], theirs[1]);
                for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++)
                                if (memcmp(mine[a], theirs[b], 6) == 0) {
                                        ret = ve_error_set(
                                            err, VE_ECONFLICT,
                                            "MAC %02x:%02x:%02x:%02x:%02x:%02x is already used "
                                            "by VE %u",
                                            mine[a][0], mine[a][1], mine[a][2], mine[a][3],
                                            mine[a][4], mine[a][5], other);
                                        json_decref(ves);
                                        return ret;
                                }
        }
        json_decref(ves);
        return 0;
}
