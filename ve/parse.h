/* Parsing and validation of the values an admin types or a request carries:
 * sizes, CTIDs, VE names, hostnames, IP addresses. Shared by the daemon's API
 * layer and vectl so both accept exactly the same language. Each returns 0 or
 * -EINVAL/-ERANGE and fills err with a message naming the bad value. */
#ifndef VE_PARSE_H
#define VE_PARSE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* CTIDs 1-100 are reserved as in OpenVZ; the top is what fits ve names and cgroups. */
#define VE_CTID_MIN 101u
#define VE_CTID_MAX 2147483647u

/* "2G", "512M", "100k", "4096", "1.5G" (binary units, case-insensitive, optional
 * trailing B or iB). Overflow of uint64 is refused. `what` names the option. */
int ve_parse_size(const char *s, uint64_t *out, const char *what, struct ve_error *err);

/* A plain non-negative decimal integer no larger than max. */
int ve_parse_uint(const char *s, uint64_t max, uint64_t *out, const char *what,
                  struct ve_error *err);

/* "50", "50%" -> 50. Percent of one CPU, 1..(100 * 4096). */
int ve_parse_percent(const char *s, uint64_t *out, const char *what, struct ve_error *err);

/* "yes"/"no"/"true"/"false"/"on"/"off"/"1"/"0". */
int ve_parse_bool(const char *s, bool *out, const char *what, struct ve_error *err);

int ve_check_ctid(uint64_t ctid, struct ve_error *err);
/* Accepts "101" only: a decimal CTID. Returns -EINVAL quietly (no err) when s is
 * not all digits, so callers can fall back to treating s as a name. */
int ve_parse_ctid(const char *s, uint32_t *out, struct ve_error *err);

/* VE names: 1-64 of [A-Za-z0-9_.-], starting with a letter (so a name is never
 * mistaken for a CTID). */
int ve_check_name(const char *s, struct ve_error *err);

/* RFC 1123 hostname: labels of 1-63 [A-Za-z0-9-], not starting/ending with '-',
 * total at most 253. */
int ve_check_hostname(const char *s, struct ve_error *err);
/* A VE's own host name: a hostname that also fits the kernel's 64 bytes. */
int ve_check_host_name(const char *s, struct ve_error *err);

/* An IPv4 or IPv6 address, optionally with /prefix; canonical text written to out
 * (at least 64 bytes). family gets AF_INET or AF_INET6. */
int ve_parse_ip(const char *s, char *out, int *family, struct ve_error *err);

/* A bridge subnet given by one of its addresses ("10.199.0.1/24", prefix 8-30;
 * "fd00:199::1/64", prefix 16-126): the address and the network. */
#define VE_SUBNET_TEXT_LEN 52 /* an IPv6 address, "/", 3 digits, NUL */
struct ve_subnet {
        int family;
        unsigned char bytes[16]; /* the address given, network order */
        unsigned int prefix;
        char addr[INET6_ADDRSTRLEN];      /* the address, canonical: "10.199.0.1" */
        char network[VE_SUBNET_TEXT_LEN]; /* "10.199.0.0/24" */
};

/* Whether a bridge subnet of family may have prefix. */
bool ve_subnet_prefix_ok(int family, unsigned long prefix);

/* Parse s as a subnet of family (AF_INET or AF_INET6): 0, or -EINVAL for
 * anything else (no prefix, a prefix out of range, trailing text). Quiet: each
 * caller words its own message. */
int ve_parse_subnet(const char *s, int family, struct ve_subnet *out);

/* Template names: 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'. */
int ve_check_template_name(const char *s, struct ve_error *err);

/* Format bytes as a short human size ("2.0G", "512M", "100K", "12B") into buf. */
const char *ve_format_size(uint64_t bytes, char *buf, unsigned len);

#endif
