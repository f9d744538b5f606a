/* What vectl's commands share: the global options, the command signature, and
 * small helpers for arguments.
 *
 * A command returns an exit code (>= 0; 0 normally, exec returns the command's
 * own status) or a negative errno value with err filled; main() then prints
 * "vectl: <message>" and exits with cli_exit_code(err). Commands never exit. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ve/cleanup.h"
#include "ve/error.h"

struct cli {
        const char *socket; /* the daemon's unix socket */
};

typedef int (*cmd_fn)(const struct cli *cli, int argc, char **argv, struct ve_error *err);

static inline void cleanup_jsonp(json_t **j)
{
        json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(cleanup_jsonp)))

/* The verbs. argv[0] is the verb itself; each parses its options with getopt_long. */
int cmd_create(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_set(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_destroy(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_start(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_stop(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_restart(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_status(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_list(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_events(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_exec(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_enter(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_console(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_template(const struct cli *cli, int argc, char **argv, struct ve_error *err);
int cmd_op(const struct cli *cli, int argc, char **argv, struct ve_error *err);

/* Value getopt_long returned for an option error; err is then filled (CLI_EUSAGE). */
#define CLI_OPT_ERROR (-2)

/* getopt_long() that reports unknown options and missing arguments in err instead
 * of printing them. Returns the option, -1 at the end, or CLI_OPT_ERROR.
 * Call cli_getopt_reset() before the first call of each command. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               struct ve_error *err);
void cli_getopt_reset(void);

/* Checks that the command got between min and max operands after its options
 * (max < 0: no limit); `what` names them for the message ("CTID"). */
int cli_check_operands(int argc, char **argv, int min, int max, const char *what,
                       struct ve_error *err);

/* A VE named on the command line, by CTID or name, checked locally; writes
 * "/v1/ves/<id><suffix>" into path (len bytes). */
int cli_ve_path(const char *arg, const char *suffix, char *path, size_t len, struct ve_error *err);

/* Prints a command's usage text on stdout; returns 0. */
int cli_usage(const char *text);

/* A verb with sub-verbs (vectl template list): argv[0] is the verb, argv[1]
 * the sub-verb, which runs with argv[0] replaced by `full` ("template list")
 * so its messages name it. "help"/--help print usage and the table. */
struct cli_subcmd {
        const char *name;
        const char *full;
        cmd_fn fn;
        const char *help;
};

int cli_dispatch_sub(const struct cli *cli, const struct cli_subcmd *subs, size_t n,
                     const char *usage, int argc, char **argv, struct ve_error *err);

#endif
