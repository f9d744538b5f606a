#include "policy.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

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
