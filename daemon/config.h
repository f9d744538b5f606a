/* ved's configuration: defaults, then the config file, then command-line flags.
 * Every config file key is also a flag (`state-dir = /x` is `--state-dir /x`). */
#ifndef VED_CONFIG_H
#define VED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "ve/error.h"

struct ved_config {
        char *state_dir;        /* /var/lib/ved */
        char *socket_path;      /* /run/ved/ved.sock */
        char *instance;         /* kernel object prefix, "ved" */
        char *config_file;      /* /etc/ved/ved.conf, optional */
        char *template_recipes; /* directory of template recipes (<distro>/build) */
        char *bridge_subnet;    /* gateway/prefix of the default bridge, "10.199.0.1/24" */
        char *bridge_subnet6;   /* its IPv6 gateway/prefix, "fd00:199::1/64"; NULL: none */
        int log_level;          /* enum ved_log_level */
        char **uplinks;         /* host interfaces that answer ARP/NDP for VE addresses */
        size_t n_uplinks;
        bool foreground;
        /* On a v1 host, turn on the cgroup2 option favordynmods at startup
         * (ve/cgroupfs.h): starts and execs then move their process into the VE's
         * cgroups without waiting for an RCU grace period. Default no:
         * host-wide, and its effect may last until reboot (it did on Linux 6.18). */
        bool cgroup_favordynmods;
        /* How long an exec's command may take to reach its execve; 0: ve/exec.h's
         * default. Set only by the test hook VED_TEST_EXEC_START_TIMEOUT_MS. */
        unsigned exec_start_timeout_ms;
};

void ved_config_init(struct ved_config *cfg);
void ved_config_free(struct ved_config *cfg);

/* Set one key ("state-dir", "socket", "instance", "log-level", "foreground",
 * "cgroup-favordynmods", "uplink": comma-separated interface names) from
 * text; validates the value. */
int ved_config_set(struct ved_config *cfg, const char *key, const char *value,
                   struct ve_error *err);

/* Read "key = value" lines ('#' comments) from path. A missing file is an error
 * only when `required` (it was named with --config). */
int ved_config_load_file(struct ved_config *cfg, const char *path, bool required,
                         struct ve_error *err);

/* Parse argv; returns 1 when the program should exit 0 (--help, --version). */
int ved_config_parse_args(struct ved_config *cfg, int argc, char **argv, struct ve_error *err);

#endif
