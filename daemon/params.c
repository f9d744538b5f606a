#include "params.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#include "netplan.h"
#include "ve/net.h"
#include "ve/parse.h"

#define GiB   (1024ull * 1024 * 1024)
#define TiB   (1024ull * GiB)
#define SZMAX ((uint64_t)INT64_MAX)

const struct ved_param ved_params[] = {
        { "name", VED_P_NAME, 0, 0, 0, "unique name of the VE" },
        { "ostemplate", VED_P_TEMPLATE, 0, 0,
          VED_PF_CREATE_ONLY | VED_PF_REQUIRED | VED_PF_NOT_NULL, "OS template" },
        { "layout", VED_P_LAYOUT, 0, 0, VED_PF_CREATE_ONLY | VED_PF_NOT_NULL,
          "private area: image (the template's files copied) or layered (shared)" },
        { "hostname", VED_P_HOSTNAME, 0, 0, 0, "hostname" },
        { "ip", VED_P_IPLIST, 0, 256, VED_PF_NOT_NULL, "IP addresses" },
        { "nameserver", VED_P_IPLIST, 0, 8, VED_PF_NOT_NULL, "DNS servers" },
        { "searchdomain", VED_P_DOMAINS, 0, 6, VED_PF_NOT_NULL, "DNS search domains" },
        { "onboot", VED_P_BOOL, 0, 1, 0, "start when the daemon starts" },
        { "ram", VED_P_SIZE, 4ull << 20, SZMAX, 0, "memory limit" },
        { "swap", VED_P_SIZE, 0, SZMAX, 0, "swap beyond ram" },
        { "cpus", VED_P_COUNT, 1, 4096, 0, "CPUs the VE may use" },
        { "cpulimit", VED_P_PERCENT, 1, 100u * 4096u, 0, "CPU cap, 100% is one CPU" },
        { "cpuunits", VED_P_COUNT, 8, 500000, 0, "relative CPU weight" },
        { "numproc", VED_P_COUNT, 1, 4194304, 0, "processes and threads" },
        { "diskspace", VED_P_SIZE, 64ull << 20, 64 * TiB, VED_PF_NOT_NULL, "disk space" },
        { "diskinodes", VED_P_COUNT, 1024, 4294967295ull, 0, "disk inodes" },
        { "iolimit", VED_P_SIZE, 1, SZMAX, 0, "I/O bandwidth in bytes per second" },
        { "iopslimit", VED_P_COUNT, 1, 1000000000, 0, "I/O operations per second" },
        { "rate", VED_P_COUNT, 0, 16000, 0, "network bandwidth in Mbit/s each way, 0: none" },
        { "netif", VED_P_NETIF, 0, 0, 0, "bridged interface: ifname, mac, host_mac, bridge" },
        { "bridge", VED_P_IFNAME, 0, 0, 0, "bridge of the bridged interface" },
        { "stop_timeout", VED_P_COUNT, 1, 86400, VED_PF_NOT_NULL, "seconds to wait for init" },
        { "init", VED_P_PATH, 0, 0, VED_PF_NOT_NULL, "path of the VE's init" },
        { "description", VED_P_TEXT, 0, 1024, 0, "free text" },
        { NULL, 0, 0, 0, 0, NULL },
};

const struct ved_param *ved_param_find(const char *key)
{
        for (const struct ved_param *p = ved_params; p->key != NULL; p++)
                if (strcmp(p->key, key) == 0)
                        return p;
        return NULL;
}

json_t *ved_param_default(const struct ved_param *p)
{
        if (strcmp(p->key, "diskspace") == 0)
                return json_integer(2 * (json_int_t)GiB);
        if (strcmp(p->key, "stop_timeout") == 0)
                return json_integer(120);
        if (strcmp(p->key, "init") == 0)
                return json_string("/sbin/init");
        if (strcmp(p->key, "layout") == 0)
                return json_string("image");
        if (p->kind == VED_P_IPLIST || p->kind == VED_P_DOMAINS)
                return json_array();
        return json_null();
}

/* unitless: v was written as a plain number (vzctl reads --diskspace, for one, in
 * KiB blocks; a size here is bytes). */
static json_t *range_checked(const struct ved_param *p, uint64_t v, bool unitless,
                             struct ve_error *err)
{
        bool size = p->kind == VED_P_SIZE;
        char min[32], max[32];

        if (v < p->min || v > p->max) {
                /* Sizes' bounds as a person writes them (64M to 64T). */
                if (size) {
                        ve_format_size(p->min, min, sizeof(min));
                        ve_format_size(p->max, max, sizeof(max));
                } else {
                        snprintf(min, sizeof(min), "%llu", (unsigned long long)p->min);
                        snprintf(max, sizeof(max), "%llu", (unsigned long long)p->max);
                }
                ve_error_set(
                    err, VE_EINVAL_INPUT, "%s: %llu%s is out of range (%s to %s)%s", p->key,
                    (unsigned long long)v, size ? " bytes" : "", min, max,
                    size && unitless ? "; a number without a unit is bytes: write 10G, 512M" : "");
                return NULL;
        }
        return json_integer((json_int_t)v);
}

static json_t *norm_number(const struct ved_param *p, json_t *value, struct ve_error *err)
{
        const char *s;
        uint64_t v = 0;
        int ret;

        if (json_is_integer(value)) {
                if (json_integer_value(value) < 0) {
                        ve_error_set(err, VE_EINVAL_INPUT, "%s must not be negative", p->key);
                        return NULL;
                }
                return range_checked(p, (uint64_t)json_integer_value(value), true, err);
        }
        if (!json_is_string(value)) {
                ve_error_set(err, VE_EINVAL_INPUT, "%s must be %s", p->key,
                             p->kind == VED_P_SIZE ? "an integer of bytes or a size such as \"2G\""
                                                   : "a non-negative integer");
                return NULL;
        }
        s = json_string_value(value);
        if (p->kind == VED_P_SIZE)
                ret = ve_parse_size(s, &v, p->key, err);
        else if (p->kind == VED_P_PERCENT)
                ret = ve_parse_percent(s, &v, p->key, err);
        else
                ret = ve_parse_uint(s, UINT64_MAX, &v, p->key, err);
        return ret < 0 ? NULL : range_checked(p, v, s[strspn(s, "0123456789")] == '\0', err);
}

static bool printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 && *s != '\t')
                        return false;
        return true;
}

static json_t *norm_string(const struct ved_param *p, json_t *value, struct ve_error *err)
{
        const char *s;
        int ret = 0;

        if (!json_is_string(value) ||
            strlen(json_string_value(value)) != json_string_length(value)) {
                ve_error_set(err, VE_EINVAL_INPUT, "%s must be a string without NUL bytes", p->key);
                return NULL;
        }
        s = json_string_value(value);
        switch (p->kind) {
        case VED_P_HOSTNAME:
                ret = ve_check_host_name(s, err);
                break;
        case VED_P_NAME:
                ret = ve_check_name(s, err);
                break;
        case VED_P_TEMPLATE:
                ret = ve_check_template_name(s, err);
                break;
        case VED_P_LAYOUT:
                if (strcmp(s, "image") != 0 && strcmp(s, "layered") != 0)
                        ret = ve_error_set(err, VE_EINVAL_INPUT,
                                           "%s must be image or layered, not '%.32s'", p->key, s);
                break;
        case VED_P_PATH:
                if (s[0] != '/' || strlen(s) > 255 || !printable(s) || strstr(s, "/../") ||
                    (strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0))
                        ret = ve_error_set(err, VE_EINVAL_INPUT,
                                           "%s must be an absolute path of at most 255 characters "
                                           "without '..'",
                                           p->key);
                break;
        default:
                if (strlen(s) > p->max || !printable(s))
                        ret = ve_error_set(err, VE_EINVAL_INPUT,
                                           "%s must be printable text of at most %llu characters",
                                           p->key, (unsigned long long)p->max);
        }
        return ret < 0 ? NULL : json_incref(value);
}

static json_t *norm_list_item(const struct ved_param *p, json_t *item, struct ve_error *err)
{
        char canon[64];
        const char *s;

        if (!json_is_string(item)) {
                ve_error_set(err, VE_EINVAL_INPUT, "%s must be an array of strings", p->key);
                return NULL;
        }
        s = json_string_value(item);
        if (p->kind == VED_P_DOMAINS) {
                if (ve_check_hostname(s, err) < 0) {
                        ve_error_prefix(err, "%s", p->key);
                        return NULL;
                }
                return json_string(s);
        }
        /* vzctl's --nameserver inherit: the host's own, read when written. */
        if (strcmp(p->key, "nameserver") == 0 && strcmp(s, "inherit") == 0)
                return json_string(s);
        if (ve_parse_ip(s, canon, NULL, err) < 0 ||
            (strcmp(p->key, "ip") == 0 && ve_net_addr_check(canon, err) < 0)) {
                ve_error_prefix(err, "%s", p->key);
                return NULL;
        }
        return json_string(canon);
}

bool ved_ip_same_address(const char *a, const char *b)
{
        size_t len = strcspn(a, "/");

        return strcspn(b, "/") == len && strncmp(a, b, len) == 0;
}

/* The index in list of s, -1 when absent; with addresses, of the entry for the
 * same address (ved_ip_same_address()). */
static ssize_t list_find(json_t *list, const char *s, bool address)
{
        size_t i;
        json_t *v;

        json_array_foreach(list, i, v)
        {
                const char *have = json_string_value(v);

                if (address ? ved_ip_same_address(have, s) : strcmp(have, s) == 0)
                        return (ssize_t)i;
        }
        return -1;
}

static json_t *norm_list(const struct ved_param *p, json_t *value, struct ve_error *err)
{
        json_t *out, *item, *n;
        size_t i;

        if (!json_is_array(value)) {
                ve_error_set(err, VE_EINVAL_INPUT, "%s must be an array of strings", p->key);
                return NULL;
        }
        if (json_array_size(value) > p->max) {
                ve_error_set(err, VE_EINVAL_INPUT, "%s: at most %llu entries", p->key,
                             (unsigned long long)p->max);
                return NULL;
        }
        out = json_array();
        json_array_foreach(value, i, item)
        {
                n = norm_list_item(p, item, err);
                if (n == NULL) {
                        json_decref(out);
                        return NULL;
                }
                /* The same address again: the later one (its prefix) wins. */
                ssize_t at = list_find(out, json_string_value(n), p->kind == VED_P_IPLIST);

                if (at >= 0)
                        json_array_set_new(out, (size_t)at, n);
                else
                        json_array_append_new(out, n);
        }
        return out;
}

json_t *ved_param_normalize(const struct ved_param *p, json_t *value, struct ve_error *err)
{
        if (json_is_null(value))
                return json_null();
        switch (p->kind) {
        case VED_P_SIZE:
        case VED_P_COUNT:
        case VED_P_PERCENT:
                return norm_number(p, value, err);
        case VED_P_BOOL:
                if (!json_is_boolean(value)) {
                        ve_error_set(err, VE_EINVAL_INPUT, "%s must be true or false", p->key);
                        return NULL;
                }
                return json_incref(value);
        case VED_P_IPLIST:
        case VED_P_DOMAINS:
                return norm_list(p, value, err);
        case VED_P_NETIF:
        case VED_P_IFNAME:
                return ved_netif_normalize(p->key, p->kind == VED_P_NETIF, value, err);
        default:
                return norm_string(p, value, err);
        }
}
