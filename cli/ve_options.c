#include "ve_options.h"
#include "exitcode.h"
#include "ve/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum ve_opt_kind {
        KIND_TEMPLATE,
        KIND_NAME,
        KIND_HOSTNAME,
        KIND_DOMAINS, /* list of domain names */
        KIND_IPS,     /* list of IP addresses */
        KIND_IPDEL,   /* list of IP addresses, or "all" */
        KIND_BOOL,
        KIND_SIZE,
        KIND_COUNT,
        KIND_PERCENT,
        KIND_PATH,
        KIND_TEXT,
        KIND_NAMESERVER, /* list of IP addresses, or "inherit" */
        KIND_USERPASSWD, /* USER:PASSWORD, write-only */
        KIND_SSHKEY,     /* a public key, or a file holding keys */
        KIND_NOOP,
        KIND_NETIF,     /* vzctl's "ifname[,mac,host_ifname,host_mac,bridge]", checked by ved */
        KIND_NETIF_DEL, /* ifname or "all": the field becomes null */
};

struct ve_opt {
        const char *name;  /* the long option */
        const char *field; /* the JSON field */
        enum ve_opt_kind kind;
        unsigned which; /* VE_OPT_CREATE | VE_OPT_SET */
        uint64_t max;   /* for counts */
        const char *arg;
        const char *help; /* an arg of N[:N] takes vzctl's BARRIER:LIMIT too */
};

#define BOTH      (VE_OPT_CREATE | VE_OPT_SET)
#define COUNT_MAX 2147483647u

static const struct ve_opt ve_opts[] = {
        { "ostemplate", "ostemplate", KIND_TEMPLATE, VE_OPT_CREATE, 0, "NAME",
          "OS template to create the VE from (required; centos-7: the host's arch)" },
        { "layout", "layout", KIND_TEXT, VE_OPT_CREATE, 0, "image|layered",
          "image (default): a copy of the template; layered: the template shared" },
        { "name", "name", KIND_NAME, BOTH, 0, "NAME", "VE name, usable wherever a CTID is" },
        { "hostname", "hostname", KIND_HOSTNAME, BOTH, 0, "HOST", "hostname set in the VE" },
        { "ipadd", "ip", KIND_IPS, VE_OPT_CREATE, 0, "IP", "add an IPv4 or IPv6 address (repeat)" },
        { "ipadd", "ipadd", KIND_IPS, VE_OPT_SET, 0, "IP", "add an IPv4 or IPv6 address (repeat)" },
        { "ipdel", "ipdel", KIND_IPDEL, VE_OPT_SET, 0, "IP|all",
          "remove an address, or all of them (repeat)" },
        { "nameserver", "nameserver", KIND_NAMESERVER, BOTH, 0, "IP|inherit",
          "DNS server for the VE (repeat; replaces the list); inherit: the host's" },
        { "searchdomain", "searchdomain", KIND_DOMAINS, BOTH, 0, "DOMAIN",
          "DNS search domain (repeat; replaces the list)" },
        { "userpasswd", "userpasswd", KIND_USERPASSWD, BOTH, 0, "USER:PASS",
          "set a user's password in the VE (hashed; never stored)" },
        { "ssh-key", "ssh_key", KIND_SSHKEY, BOTH, 0, "FILE|KEY",
          "root's authorized_keys in the VE: a public key, or a file of them" },
        { "onboot", "onboot", KIND_BOOL, BOTH, 0, "yes|no", "start the VE when ved starts" },
        { "ram", "ram", KIND_SIZE, BOTH, 0, "SIZE", "memory limit (unlimited: none)" },
        { "swap", "swap", KIND_SIZE, BOTH, 0, "SIZE", "swap allowed beyond ram" },
        { "cpus", "cpus", KIND_COUNT, BOTH, 4096, "N", "number of CPUs the VE may use (0: all)" },
        { "cpulimit", "cpulimit", KIND_PERCENT, BOTH, 0, "N[%]",
          "CPU cap, 100% = one CPU (0: none)" },
        { "cpuunits", "cpuunits", KIND_COUNT, BOTH, COUNT_MAX, "N",
          "relative CPU weight (default 1000)" },
        { "numproc", "numproc", KIND_COUNT, BOTH, COUNT_MAX, "N[:N]",
          "processes and threads limit (unlimited: none)" },
        { "diskspace", "diskspace", KIND_SIZE, BOTH, 0, "SIZE[:SIZE]", "disk space (default 2G)" },
        { "diskinodes", "diskinodes", KIND_COUNT, BOTH, COUNT_MAX, "N[:N]", "inode limit" },
        { "iolimit", "iolimit", KIND_SIZE, BOTH, 0, "SIZE",
          "disk I/O limit, bytes per second (0: none)" },
        { "iopslimit", "iopslimit", KIND_COUNT, BOTH, COUNT_MAX, "N",
          "disk I/O limit, operations per second (0: none)" },
        { "rate", "rate", KIND_COUNT, BOTH, COUNT_MAX, "MBIT",
          "network bandwidth each way, Mbit/s (0: no limit; live)" },
        { "netif_add", "netif", KIND_NETIF, BOTH, 0, "SPEC",
          "bridged mode, SPEC = IF[,MAC,,HOST_MAC,BRIDGE] (bridge default <instance>0)" },
        { "netif_del", "netif", KIND_NETIF_DEL, VE_OPT_SET, 0, "IF|all",
          "back to routed mode: remove the bridged interface" },
        { "bridge", "bridge", KIND_TEXT, BOTH, 0, "NAME", "bridge of the bridged interface" },
        { "stop-timeout", "stop_timeout", KIND_COUNT, BOTH, COUNT_MAX, "SEC",
          "seconds stop waits for init before killing (default 120)" },
        { "init", "init", KIND_PATH, BOTH, 0, "PATH",
          "init program in the VE (default /sbin/init)" },
        { "description", "description", KIND_TEXT, BOTH, 0, "TEXT", "free text about the VE" },
        { "save", NULL, KIND_NOOP, VE_OPT_SET, 0, NULL,
          "accepted for vzctl habits; changes are always saved" },
};

#define VE_OPTS_COUNT (sizeof(ve_opts) / sizeof(ve_opts[0]))

int ve_opts_longopts(enum ve_opt_for which, struct option *opts, size_t *n, size_t max)
{
        for (size_t i = 0; i < VE_OPTS_COUNT; i++) {
                if (!(ve_opts[i].which & which))
                        continue;
                if (*n + 1 >= max)
                        return -ENOSPC;
                opts[(*n)++] = (struct option){ ve_opts[i].name,
                                                ve_opts[i].arg ? required_argument : no_argument,
                                                NULL, VE_OPT_BASE + (int)i };
        }
        opts[*n] = (struct option){ 0 };
        return 0;
}

static int append(json_t *body, const char *field, json_t *item, struct ve_error *err)
{
        json_t *list = json_object_get(body, field);

        if (list == NULL) {
                list = json_array();
                if (list == NULL || json_object_set_new(body, field, list) < 0) {
                        json_decref(item);
                        return ve_error_set(err, ENOMEM, "out of memory");
                }
        }
        if (json_array_append_new(list, item) < 0)
                return ve_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int check_text(const struct ve_opt *o, const char *v, json_t **out, struct ve_error *err)
{
        int ret = 0;

        switch (o->kind) {
        case KIND_TEMPLATE:
                ret = ve_check_template_name(v, err);
                break;
        case KIND_NAME:
                ret = ve_check_name(v, err);
                break;
        case KIND_HOSTNAME:
                ret = ve_check_host_name(v, err);
                break;
        case KIND_DOMAINS:
                ret = ve_check_hostname(v, err);
                break;
        case KIND_PATH:
                if (v[0] != '/')
                        ret = ve_error_set(err, VE_EINVAL_INPUT,
                                           "--%s: '%s' is not an absolute path", o->name, v);
                break;
        default:
                break;
        }
        if (ret < 0)
                return ret;
        *out = json_string(v);
        return 0;
}

static int check_ip(const struct ve_opt *o, const char *v, json_t **out, struct ve_error *err)
{
        char canon[64];
        int ret;

        /* The daemon takes ["all"] in ipdel to mean every address. */
        if (o->kind == KIND_IPDEL && strcmp(v, "all") == 0) {
                *out = json_string("all");
                return 0;
        }
        ret = ve_parse_ip(v, canon, NULL, err);
        if (ret < 0)
                return ve_error_prefix(err, "--%s", o->name);
        *out = json_string(canon);
        return 0;
}

static int parse_number(const struct ve_opt *o, const char *v, uint64_t *n, const char *what,
                        struct ve_error *err)
{
        if (o->kind == KIND_SIZE)
                return ve_parse_size(v, n, what, err);
        if (o->kind == KIND_PERCENT)
                return ve_parse_percent(v, n, what, err);
        return ve_parse_uint(v, o->max, n, what, err);
}

/* vzctl's BARRIER:LIMIT (--diskspace 10G:11G): ved has one hard limit, the second. */
static int parse_pair(const struct ve_opt *o, const char *v, uint64_t *n, const char *what,
                      struct ve_error *err)
{
        const char *colon = strchr(v, ':');
        char barrier[64];
        uint64_t b;
        int ret;

        if (colon == NULL || strstr(o->arg, "[:") == NULL)
                return parse_number(o, v, n, what, err);
        if ((size_t)(colon - v) >= sizeof(barrier))
                return ve_error_set(err, VE_EINVAL_INPUT, "%s: '%s' is not a number", what, v);
        memcpy(barrier, v, (size_t)(colon - v));
        barrier[colon - v] = '\0';
        ret = parse_number(o, barrier, &b, what, err);
        if (ret == 0)
                ret = parse_number(o, colon + 1, n, what, err);
        if (ret < 0)
                return ret;
        if (b > *n)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "%s: the barrier %s is above the limit %s", what, barrier,
                                    colon + 1);
        return 0;
}

/* vzctl's ways to lift a limit: "unlimited", and 0 where 0 means none. ved's
 * null does it (the limit's default). */
static bool lifts_limit(const struct ve_opt *o, const char *v)
{
        static const char *const limits[] = { "ram",     "cpus",    "cpulimit",
                                              "numproc", "iolimit", "iopslimit" };
        bool limit = false;

        for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
                limit = limit || strcmp(o->name, limits[i]) == 0;
        if (!limit)
                return false;
        return strcmp(v, "unlimited") == 0 || (strcmp(v, "0") == 0 && strcmp(o->name, "ram") != 0 &&
                                               strcmp(o->name, "numproc") != 0);
}

static int check_number(const struct ve_opt *o, const char *v, json_t **out, struct ve_error *err)
{
        const char *limit;
        char what[64];
        uint64_t n;
        bool b;
        int ret;

        snprintf(what, sizeof(what), "--%s", o->name);
        if (lifts_limit(o, v)) {
                *out = json_null();
                return 0;
        }
        if (o->kind == KIND_BOOL) {
                ret = ve_parse_bool(v, &b, what, err);
                if (ret < 0)
                        return ret;
                *out = json_boolean(b);
                return 0;
        }
        ret = parse_pair(o, v, &n, what, err);
        if (ret < 0)
                return ret;
        if (n > (uint64_t)INT64_MAX)
                return ve_error_set(err, VE_EINVAL_INPUT, "%s: '%s' is too large", what, v);
        /* vzctl reads a bare --diskspace as 1 KiB blocks: say how it is read here. */
        if (strcmp(o->name, "diskspace") == 0 && strspn(v, "0123456789:") == strlen(v)) {
                char size[32];

                fprintf(stderr,
                        "vectl: warning: --diskspace %s is read as bytes (%s), where vzctl "
                        "reads 1 KiB blocks; give a unit (10G) to be sure\n",
                        v, ve_format_size(n, size, sizeof(size)));
        }
        /* A size with a unit goes as written, so that ved's errors quote it as a
         * size, not as a bare number of bytes. */
        limit = strrchr(v, ':') ? strrchr(v, ':') + 1 : v;
        if (o->kind == KIND_SIZE && limit[strspn(limit, "0123456789")] != '\0')
                *out = json_string(limit);
        else
                *out = json_integer((json_int_t)n);
        return 0;
}

/* A key given as text, or the name of a file holding keys (~/.ssh/id_ed25519.pub). */
static int read_ssh_key(const struct ve_opt *o, const char *v, json_t **out, struct ve_error *err)
{
        char buf[16385];
        size_t n;
        FILE *f;

        if (strchr(v, ' ') != NULL) {
                *out = json_string(v);
                return 0;
        }
        f = fopen(v, "re");
        if (f == NULL)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "--%s: '%s' is neither a public key nor a readable file",
                                    o->name, v);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        if (n == sizeof(buf) - 1)
                return ve_error_set(err, VE_EINVAL_INPUT, "--%s: %s is too large", o->name, v);
        buf[n] = '\0';
        *out = json_string(buf);
        return 0;
}

static int check_value(const struct ve_opt *o, const char *v, json_t **out, struct ve_error *err)
{
        switch (o->kind) {
        case KIND_NETIF_DEL:
                *out = json_null();
                return 0;
        case KIND_NAMESERVER:
                if (strcmp(v, "inherit") == 0) {
                        *out = json_string(v);
                        return 0;
                }
                return check_ip(o, v, out, err);
        case KIND_USERPASSWD:
                if (strchr(v, ':') == NULL || v[0] == ':')
                        return ve_error_set(err, VE_EINVAL_INPUT, "--%s: give USER:PASSWORD",
                                            o->name);
                *out = json_string(v);
                return 0;
        case KIND_SSHKEY:
                return read_ssh_key(o, v, out, err);
        case KIND_IPS:
        case KIND_IPDEL:
                return check_ip(o, v, out, err);
        case KIND_BOOL:
        case KIND_SIZE:
        case KIND_COUNT:
        case KIND_PERCENT:
                return check_number(o, v, out, err);
        default:
                return check_text(o, v, out, err);
        }
}

static bool is_list(enum ve_opt_kind kind)
{
        return kind == KIND_IPS || kind == KIND_IPDEL || kind == KIND_DOMAINS ||
               kind == KIND_NAMESERVER;
}

int ve_opts_apply(enum ve_opt_for which, int c, const char *value, json_t *body,
                  struct ve_error *err)
{
        size_t i = (size_t)(c - VE_OPT_BASE);
        const struct ve_opt *o;
        json_t *v = NULL;
        int ret;

        if (c < VE_OPT_BASE || i >= VE_OPTS_COUNT || !(ve_opts[i].which & which))
                return ve_error_set(err, EINVAL, "internal error: option %d", c);
        o = &ve_opts[i];
        if (o->kind == KIND_NOOP)
                return 0;
        ret = check_value(o, value, &v, err);
        if (ret < 0)
                return ret;
        if (v == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        if (is_list(o->kind))
                return append(body, o->field, v, err);
        if (json_object_set_new(body, o->field, v) < 0)
                return ve_error_set(err, ENOMEM, "out of memory");
        return 0;
}

void ve_opts_help(enum ve_opt_for which, FILE *f)
{
        char left[64];

        for (size_t i = 0; i < VE_OPTS_COUNT; i++) {
                const struct ve_opt *o = &ve_opts[i];

                if (!(o->which & which))
                        continue;
                snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
                         o->arg ? o->arg : "");
                fprintf(f, "  %-24s %s\n", left, o->help);
        }
}
