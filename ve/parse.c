#include "parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static int shift_for_unit(char c)
{
        switch (tolower((unsigned char)c)) {
        case 'k':
                return 10;
        case 'm':
                return 20;
        case 'g':
                return 30;
        case 't':
                return 40;
        case 'p':
                return 50;
        default:
                return -1;
        }
}

/* Parse leading digits into *out without overflow; returns characters consumed. */
static int parse_digits(const char *s, uint64_t *out, bool *overflow)
{
        uint64_t v = 0;
        int n = 0;

        *overflow = false;
        while (isdigit((unsigned char)s[n])) {
                unsigned d = (unsigned)(s[n] - '0');

                if (v > (UINT64_MAX - d) / 10)
                        *overflow = true;
                else
                        v = v * 10 + d;
                n++;
        }
        *out = v;
        return n;
}

static int parse_unit_suffix(const char *p, int *shift)
{
        *shift = 0;
        if (*p == '\0')
                return 0;
        *shift = shift_for_unit(*p);
        if (*shift < 0) {
                if ((*p == 'b' || *p == 'B') && p[1] == '\0')
                        return *shift = 0, 0;
                return -1;
        }
        p++;
        if (*p == 'i' || *p == 'I')
                p++;
        if (*p == 'b' || *p == 'B')
                p++;
        return *p == '\0' ? 0 : -1;
}

int ve_parse_size(const char *s, uint64_t *out, const char *what, struct ve_error *err)
{
        uint64_t whole = 0, frac = 0, fracdiv = 1;
        bool overflow = false, ovf2 = false;
        const char *p = s;
        int n, shift;

        if (s == NULL || *s == '\0')
                return ve_error_set(err, VE_EINVAL_INPUT, "%s: empty size", what);
        n = parse_digits(p, &whole, &overflow);
        if (n == 0)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "%s: '%s' is not a size (use a number with K, M, G or T)", what,
                                    s);
        p += n;
        if (*p == '.') {
                p++;
                n = 0;
                while (isdigit((unsigned char)p[n]) && n < 6) {
                        frac = frac * 10 + (uint64_t)(p[n] - '0');
                        fracdiv *= 10;
                        n++;
                }
                if (n == 0)
                        return ve_error_set(err, VE_EINVAL_INPUT, "%s: '%s' is not a size", what,
                                            s);
                p += n;
                while (isdigit((unsigned char)*p))
                        p++;
        }
        if (parse_unit_suffix(p, &shift) < 0)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "%s: '%s' has an unknown unit (use K, M, G or T)", what, s);
        (void)ovf2;
        if (overflow || (shift > 0 && whole > (UINT64_MAX >> shift)))
                return ve_error_set(err, VE_EINVAL_INPUT, "%s: '%s' is too large", what, s);
        if (fracdiv > 1 && shift == 0)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "%s: '%s': a fraction needs a unit (K, M, G or T)", what, s);
        whole <<= shift;
        if (fracdiv > 1) {
                uint64_t add = (uint64_t)(((unsigned __int128)frac << shift) / fracdiv);

                if (whole > UINT64_MAX - add)
                        return ve_error_set(err, VE_EINVAL_INPUT, "%s: '%s' is too large", what, s);
                whole += add;
        }
        *out = whole;
        return 0;
}

int ve_parse_uint(const char *s, uint64_t max, uint64_t *out, const char *what,
                  struct ve_error *err)
{
        bool overflow;
        uint64_t v;
        int n;

        if (s == NULL || *s == '\0')
                return ve_error_set(err, VE_EINVAL_INPUT, "%s: empty value", what);
        n = parse_digits(s, &v, &overflow);
        if (n == 0 || s[n] != '\0')
                return ve_error_set(err, VE_EINVAL_INPUT, "%s: '%s' is not a non-negative integer",
                                    what, s);
        if (overflow || v > max)
                return ve_error_set(err, VE_EINVAL_INPUT, "%s: %s is out of range (at most %llu)",
                                    what, s, (unsigned long long)max);
        *out = v;
        return 0;
}

int ve_parse_percent(const char *s, uint64_t *out, const char *what, struct ve_error *err)
{
        char buf[32];
        size_t len;

        if (s == NULL || (len = strlen(s)) == 0 || len >= sizeof(buf))
                return ve_error_set(err, VE_EINVAL_INPUT, "%s: '%s' is not a percentage", what,
                                    s ? s : "");
        memcpy(buf, s, len + 1);
        if (buf[len - 1] == '%')
                buf[len - 1] = '\0';
        return ve_parse_uint(buf, 100u * 4096u, out, what, err);
}

int ve_parse_bool(const char *s, bool *out, const char *what, struct ve_error *err)
{
        static const char *yes[] = { "yes", "true", "on", "1" };
        static const char *no[] = { "no", "false", "off", "0" };

        for (unsigned i = 0; s != NULL && i < 4; i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return *out = true, 0;
                if (strcasecmp(s, no[i]) == 0)
                        return *out = false, 0;
        }
        return ve_error_set(err, VE_EINVAL_INPUT, "%s: '%s' is not yes or no", what, s ? s : "");
}

int ve_check_ctid(uint64_t ctid, struct ve_error *err)
{
        if (ctid < VE_CTID_MIN)
                return ve_error_set(err, VE_EINVAL_INPUT, "CTID %llu is reserved: use %u or above",
                                    (unsigned long long)ctid, VE_CTID_MIN);
        if (ctid > VE_CTID_MAX)
                return ve_error_set(err, VE_EINVAL_INPUT, "CTID %llu is too large (at most %u)",
                                    (unsigned long long)ctid, VE_CTID_MAX);
        return 0;
}

int ve_parse_ctid(const char *s, uint32_t *out, struct ve_error *err)
{
        bool overflow;
        uint64_t v;
        int n, ret;

        if (s == NULL || !isdigit((unsigned char)*s))
                return -EINVAL;
        n = parse_digits(s, &v, &overflow);
        if (s[n] != '\0')
                return -EINVAL;
        if (overflow)
                return ve_error_set(err, VE_EINVAL_INPUT, "CTID %s is too large (at most %u)", s,
                                    VE_CTID_MAX);
        ret = ve_check_ctid(v, err);
        if (ret < 0)
                return ret;
        *out = (uint32_t)v;
        return 0;
}

static bool name_char(char c)
{
        return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

int ve_check_name(const char *s, struct ve_error *err)
{
        size_t len = s ? strlen(s) : 0;

        if (len == 0 || len > 64)
                return ve_error_set(err, VE_EINVAL_INPUT, "VE name must be 1 to 64 characters");
        if (!isalpha((unsigned char)s[0]))
                return ve_error_set(err, VE_EINVAL_INPUT, "VE name '%s' must start with a letter",
                                    s);
        for (size_t i = 0; i < len; i++)
                if (!name_char(s[i]))
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "VE name '%s' may hold only letters, digits, '_', '.' "
                                            "and '-'",
                                            s);
        return 0;
}

int ve_check_template_name(const char *s, struct ve_error *err)
{
        size_t len = s ? strlen(s) : 0;

        if (len == 0 || len > 128)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "template name must be 1 to 128 characters");
        if (s[0] == '.' || s[0] == '-')
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "template name '%s' must not start with '.' or '-'", s);
        for (size_t i = 0; i < len; i++)
                if (!name_char(s[i]))
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "template name '%s' may hold only letters, digits, "
                                            "'_', '.' and '-'",
                                            s);
        return 0;
}

int ve_check_host_name(const char *s, struct ve_error *err)
{
        int ret = ve_check_hostname(s, err);

        /* The kernel's UTS nodename (sethostname) holds 64 bytes. */
        if (ret == 0 && strlen(s) > 64)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "hostname '%.64s...' is %zu characters: a host name is at most "
                                    "64 (the kernel's limit)",
                                    s, strlen(s));
        return ret;
}

int ve_check_hostname(const char *s, struct ve_error *err)
{
        size_t len = s ? strlen(s) : 0, label = 0;

        if (len == 0 || len > 253)
                return ve_error_set(err, VE_EINVAL_INPUT, "hostname must be 1 to 253 characters");
        for (size_t i = 0; i <= len; i++) {
                char c = s[i];

                if (c == '.' || c == '\0') {
                        if (label == 0 || label > 63 || s[i - 1] == '-')
                                return ve_error_set(err, VE_EINVAL_INPUT,
                                                    "hostname '%s' is not valid: each label must "
                                                    "be 1 to 63 characters, not ending in '-'",
                                                    s);
                        label = 0;
                        continue;
                }
                if (!(isalnum((unsigned char)c) || c == '-') || (label == 0 && c == '-'))
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "hostname '%s' is not valid: use letters, digits, '-' "
                                            "and '.'",
                                            s);
                label++;
        }
        return 0;
}

bool ve_subnet_prefix_ok(int family, unsigned long prefix)
{
        return family == AF_INET ? prefix >= 8 && prefix <= 30 : prefix >= 16 && prefix <= 126;
}

int ve_parse_subnet(const char *s, int family, struct ve_subnet *out)
{
        char buf[VE_SUBNET_TEXT_LEN], *slash, *end;
        unsigned char net[16];
        unsigned long prefix;
        size_t n;

        memset(out, 0, sizeof(*out));
        if (s == NULL || strlen(s) >= sizeof(buf) || (family != AF_INET && family != AF_INET6))
                return -EINVAL;
        strcpy(buf, s);
        slash = strchr(buf, '/');
        if (slash == NULL || !isdigit((unsigned char)slash[1]))
                return -EINVAL;
        *slash++ = '\0';
        errno = 0;
        prefix = strtoul(slash, &end, 10);
        if (errno != 0 || *end != '\0' || !ve_subnet_prefix_ok(family, prefix) ||
            inet_pton(family, buf, out->bytes) != 1)
                return -EINVAL;
        out->family = family;
        out->prefix = (unsigned int)prefix;
        inet_ntop(family, out->bytes, out->addr, sizeof(out->addr));
        n = family == AF_INET ? 4 : 16;
        for (size_t i = 0; i < n; i++) {
                unsigned int bits = i * 8 >= prefix ? 0 : prefix - i * 8;

                net[i] =
                    bits >= 8 ? out->bytes[i] : (unsigned char)(out->bytes[i] & (0xff00 >> bits));
        }
        inet_ntop(family, net, out->network, sizeof(out->network));
        snprintf(out->network + strlen(out->network), sizeof(out->network) - strlen(out->network),
                 "/%u", out->prefix);
        return 0;
}

int ve_parse_ip(const char *s, char *out, int *family, struct ve_error *err)
{
        unsigned char addr[16];
        char host[64], canon[INET6_ADDRSTRLEN];
        const char *slash;
        uint64_t prefix = 0;
        bool has_prefix = false;
        size_t hlen;
        int fam;

        if (s == NULL || *s == '\0')
                return ve_error_set(err, VE_EINVAL_INPUT, "empty IP address");
        slash = strchr(s, '/');
        hlen = slash ? (size_t)(slash - s) : strlen(s);
        if (hlen == 0 || hlen >= sizeof(host))
                return ve_error_set(err, VE_EINVAL_INPUT, "'%s' is not an IP address", s);
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, addr) == 1)
                fam = AF_INET;
        else if (inet_pton(AF_INET6, host, addr) == 1)
                fam = AF_INET6;
        else
                return ve_error_set(err, VE_EINVAL_INPUT, "'%s' is not an IPv4 or IPv6 address", s);
        if (slash != NULL) {
                if (ve_parse_uint(slash + 1, fam == AF_INET ? 32 : 128, &prefix, "IP prefix", err) <
                    0)
                        return ve_error_prefix(err, "address '%s'", s);
                has_prefix = true;
        }
        inet_ntop(fam, addr, canon, sizeof(canon));
        if (has_prefix)
                snprintf(out, 64, "%s/%llu", canon, (unsigned long long)prefix);
        else
                snprintf(out, 64, "%s", canon);
        if (family != NULL)
                *family = fam;
        return 0;
}

const char *ve_format_size(uint64_t bytes, char *buf, unsigned len)
{
        static const char units[] = "KMGTP";
        double v = (double)bytes;
        int u = -1;

        while (v >= 1024.0 && u < 4) {
                v /= 1024.0;
                u++;
        }
        if (u < 0)
                snprintf(buf, len, "%lluB", (unsigned long long)bytes);
        else if (v == (double)(uint64_t)v)
                snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
        else
                snprintf(buf, len, "%.1f%c", v, units[u]);
        return buf;
}
