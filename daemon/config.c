#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ve/cleanup.h"
#include "ve/parse.h"

void ved_config_init(struct ved_config *cfg)
{
        cfg->state_dir = strdup("/var/lib/ved");
        cfg->socket_path = strdup("/run/ved/ved.sock");
        cfg->instance = strdup("ved");
        /* The installed recipes; a daemon run from a build tree with nothing
         * installed uses the source tree's. */
        cfg->template_recipes =
            strdup(access(VED_TEMPLATE_RECIPES_DIR, F_OK) == 0 ? VED_TEMPLATE_RECIPES_DIR
                                                               : VED_SOURCE_RECIPES_DIR);
        cfg->config_file = NULL;
        cfg->log_level = VED_LOG_INFO;
        cfg->foreground = false;
        cfg->cgroup_favordynmods = false;
        /* Tests shorten the wait for a command stopped before its execve. */
        if (getenv("VED_TEST_EXEC_START_TIMEOUT_MS") != NULL)
                cfg->exec_start_timeout_ms =
                    (unsigned)strtoul(getenv("VED_TEST_EXEC_START_TIMEOUT_MS"), NULL, 10);
}

static void free_uplinks(struct ved_config *cfg)
{
        for (size_t i = 0; i < cfg->n_uplinks; i++)
                free(cfg->uplinks[i]);
        free(cfg->uplinks);
        cfg->uplinks = NULL;
        cfg->n_uplinks = 0;
}

/* "eth0,eth1": interface names as the kernel allows them (IFNAMSIZ). */
static int set_uplinks(struct ved_config *cfg, const char *value, struct ve_error *err)
{
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL, *name;

        free_uplinks(cfg);
        for (name = strtok_r(copy, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
                size_t len = strlen(name);

                if (len == 0 || len > 15 ||
                    strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "._-@") != len)
                        return ve_error_set(err, EINVAL, "uplink '%s' is not an interface name",
                                            name);
                cfg->uplinks = realloc(cfg->uplinks, (cfg->n_uplinks + 1) * sizeof(char *));
                cfg->uplinks[cfg->n_uplinks++] = strdup(name);
        }
        return 0;
}

void ved_config_free(struct ved_config *cfg)
{
        free_uplinks(cfg);
        free(cfg->state_dir);
        free(cfg->socket_path);
        free(cfg->instance);
        free(cfg->config_file);
        free(cfg->template_recipes);
        free(cfg->bridge_subnet);
        free(cfg->bridge_subnet6);
        memset(cfg, 0, sizeof(*cfg));
}

static int set_string(char **dst, const char *value)
{
        char *s = strdup(value);

        if (s == NULL)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

/* The instance name prefixes cgroups, bridges, veths (15-char IFNAMSIZ limit) and
 * nftables tables, so it stays short and plain. */
static int check_instance(const char *s, struct ve_error *err)
{
        size_t len = strlen(s);

        if (len == 0 || len > 8 || !isalpha((unsigned char)s[0]))
                return ve_error_set(
                    err, EINVAL, "instance '%s' must be 1 to 8 characters starting with a letter",
                    s);
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)s[i]))
                        return ve_error_set(err, EINVAL,
                                            "instance '%s' may hold only letters and digits", s);
        return 0;
}

static int check_path(const char *key, const char *value, struct ve_error *err)
{
        if (value[0] != '/')
                return ve_error_set(err, EINVAL, "%s must be an absolute path, not '%s'", key,
                                    value);
        if (strlen(value) > 200)
                return ve_error_set(err, EINVAL, "%s is too long", key);
        return 0;
}

/* "10.199.0.1/24" (IPv4, prefix 8-30) or "fd00:199::1/64" (IPv6, prefix 16-126):
 * the default bridge's own address and its subnet's prefix. */
static int check_bridge_subnet(const char *key, int family, const char *value, struct ve_error *err)
{
        struct ve_subnet s;

        if (strchr(value, '/') == NULL)
                return ve_error_set(err, EINVAL, "%s '%s' needs a prefix: the gateway, as %s", key,
                                    value, family == AF_INET ? "10.199.0.1/24" : "fd00:199::1/64");
        if (ve_parse_subnet(value, family, &s) < 0)
                return ve_error_set(err, EINVAL, "%s '%s' is not an %s gateway/prefix (%d-%d)", key,
                                    value, family == AF_INET ? "IPv4" : "IPv6",
                                    family == AF_INET ? 8 : 16, family == AF_INET ? 30 : 126);
        return 0;
}

int ved_config_set(struct ved_config *cfg, const char *key, const char *value, struct ve_error *err)
{
        int ret, level;
        bool b;

        if (strcmp(key, "state-dir") == 0 || strcmp(key, "socket") == 0) {
                ret = check_path(key, value, err);
                if (ret < 0)
                        return ret;
                return set_string(key[1] == 't' ? &cfg->state_dir : &cfg->socket_path, value);
        }
        if (strcmp(key, "template-recipes") == 0) {
                ret = check_path(key, value, err);
                return ret < 0 ? ret : set_string(&cfg->template_recipes, value);
        }
        if (strcmp(key, "instance") == 0) {
                ret = check_instance(value, err);
                return ret < 0 ? ret : set_string(&cfg->instance, value);
        }
        if (strcmp(key, "log-level") == 0) {
                level = ved_log_level_parse(value);
                if (level < 0)
                        return ve_error_set(err, EINVAL,
                                            "log-level '%s' is not one of error, warn, info, debug",
                                            value);
                cfg->log_level = level;
                return 0;
        }
        if (strcmp(key, "uplink") == 0)
                return set_uplinks(cfg, value, err);
        if (strcmp(key, "bridge-subnet") == 0) {
                ret = check_bridge_subnet(key, AF_INET, value, err);
                return ret < 0 ? ret : set_string(&cfg->bridge_subnet, value);
        }
        if (strcmp(key, "bridge-subnet6") == 0) {
                ret = check_bridge_subnet(key, AF_INET6, value, err);
                return ret < 0 ? ret : set_string(&cfg->bridge_subnet6, value);
        }
        if (strcmp(key, "foreground") == 0) {
                ret = ve_parse_bool(value, &b, key, err);
                if (ret == 0)
                        cfg->foreground = b;
                return ret;
        }
        if (strcmp(key, "cgroup-favordynmods") == 0) {
                ret = ve_parse_bool(value, &b, key, err);
                if (ret == 0)
                        cfg->cgroup_favordynmods = b;
                return ret;
        }
        return ve_error_set(err, EINVAL, "unknown configuration key '%s'", key);
}

static char *trim(char *s)
{
        char *end;

        while (isspace((unsigned char)*s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return s;
}

int ved_config_load_file(struct ved_config *cfg, const char *path, bool required,
                         struct ve_error *err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        unsigned lineno = 0;
        int ret;

        if (f == NULL) {
                if (errno == ENOENT && !required)
                        return 0;
                return ve_error_errno(err, errno, "open config file %s", path);
        }
        while (getline(&line, &cap, f) >= 0) {
                char *eq, *key, *value;

                lineno++;
                key = trim(line);
                if (*key == '\0' || *key == '#')
                        continue;
                eq = strchr(key, '=');
                if (eq == NULL)
                        return ve_error_set(err, EINVAL, "%s:%u: expected 'key = value'", path,
                                            lineno);
                *eq = '\0';
                key = trim(key);
                value = trim(eq + 1);
                ret = ved_config_set(cfg, key, value, err);
                if (ret < 0)
                        return ve_error_prefix(err, "%s:%u", path, lineno);
        }
        return 0;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: ved [OPTIONS]\n"
                "The ved daemon: manages virtual environments and serves the REST API.\n\n"
                "  --state-dir DIR     state directory (default /var/lib/ved)\n"
                "  --socket PATH       unix socket of the API (default /run/ved/ved.sock)\n"
                "  --instance NAME     prefix of kernel objects: cgroups, bridge, veths\n"
                "                      (default ved; 1-8 letters and digits)\n"
                "  --config FILE       configuration file (default /etc/ved/ved.conf if present);\n"
                "                      'key = value' lines, every key is also a flag\n"
                "  --log-level LEVEL   error, warn, info or debug (default info)\n"
                "  --uplink IF[,IF]    host interfaces that answer ARP/NDP for the VEs'\n"
                "                      addresses (routed mode; default: none)\n"
                "  --bridge-subnet GW/PREFIX  address of the default bridge <instance>0\n"
                "                      and its private subnet, NATed out (bridged mode;\n"
                "                      e.g. 10.199.0.1/24; default: none)\n"
                "  --bridge-subnet6 GW/PREFIX  the same for IPv6 (e.g. fd00:199::1/64;\n"
                "                      default: none, bridged VEs get no IPv6 route)\n"
                "  --template-recipes DIR  template recipes, one <distro>/build each, run\n"
                "                      by vectl template build and by a create that names\n"
                "                      a template not imported yet (default\n"
                "                      " VED_TEMPLATE_RECIPES_DIR ",\n"
                "                      else " VED_SOURCE_RECIPES_DIR ")\n"
                "  --cgroup-favordynmods yes|no  on a cgroup v1 host, turn on the kernel's\n"
                "                      cgroup2 option favordynmods (host-wide; its effect\n"
                "                      may last until reboot): a start or exec then\n"
                "                      enters the VE's cgroups without waiting 5-20 ms for an\n"
                "                      RCU grace period, at a small cost to every fork on the\n"
                "                      host (default no)\n"
                "  --foreground        stay in the foreground (the default under systemd)\n"
                "  --help, --version\n");
}

int ved_config_parse_args(struct ved_config *cfg, int argc, char **argv, struct ve_error *err)
{
        static const struct option opts[] = {
                { "state-dir", required_argument, NULL, 's' },
                { "socket", required_argument, NULL, 'S' },
                { "instance", required_argument, NULL, 'i' },
                { "config", required_argument, NULL, 'c' },
                { "log-level", required_argument, NULL, 'l' },
                { "uplink", required_argument, NULL, 'u' },
                { "bridge-subnet", required_argument, NULL, 'b' },
                { "bridge-subnet6", required_argument, NULL, 'B' },
                { "template-recipes", required_argument, NULL, 'r' },
                { "cgroup-favordynmods", required_argument, NULL, 'F' },
                { "foreground", no_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        const char *config_file = "/etc/ved/ved.conf";
        bool config_required = false;
        int c, idx, ret;

        /* The config file is read first so that flags override it. */
        opterr = 0;
        for (optind = 1; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                if (c == 'c') {
                        config_file = optarg;
                        config_required = true;
                }
        }
        ret = ved_config_load_file(cfg, config_file, config_required, err);
        if (ret < 0)
                return ret;
        set_string(&cfg->config_file, config_file);

        for (optind = 1; (c = getopt_long(argc, argv, "", opts, &idx)) != -1;) {
                switch (c) {
                case 'h':
                        usage(stdout);
                        return 1;
                case 'V':
                        printf("ved %s\n", VED_VERSION);
                        return 1;
                case 'c':
                        break;
                case 'f':
                        cfg->foreground = true;
                        break;
                case '?':
                        return ve_error_set(err, EINVAL, "unknown option '%s' (see ved --help)",
                                            argv[optind - 1]);
                default:
                        /* Every other flag is a configuration key of the same name. */
                        ret = ved_config_set(cfg, opts[idx].name, optarg, err);
                        if (ret < 0)
                                return ret;
                }
        }
        if (optind < argc)
                return ve_error_set(err, EINVAL, "unexpected argument '%s'", argv[optind]);
        return 0;
}
