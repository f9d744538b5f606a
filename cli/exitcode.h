/* vectl's exit codes, stable and documented in `vectl --help`, and the one place
 * that maps errors to them.
 *
 * Errors travel through vectl as struct ve_error. Besides errno values and the
 * VE_E* codes of ve/error.h, vectl uses the codes below: an HTTP error answer
 * becomes CLI_EHTTP + status, so the status survives up to cli_exit_code(). */
#ifndef CLI_EXITCODE_H
#define CLI_EXITCODE_H

#include <jansson.h>

#include "ve/error.h"

enum cli_exit {
        CLI_EXIT_OK = 0,
        CLI_EXIT_ERROR = 1,       /* generic or server error (5xx) */
        CLI_EXIT_USAGE = 2,       /* bad option or value, caught by vectl */
        CLI_EXIT_UNREACHABLE = 3, /* cannot reach the daemon */
        CLI_EXIT_NOTFOUND = 4,    /* 404 */
        CLI_EXIT_CONFLICT = 5,    /* 409, 412 */
        CLI_EXIT_INVALID = 6,     /* 400, 405, 413, 415, 422 and other 4xx */
        CLI_EXIT_OPFAILED = 7,    /* an operation finished as failed */
};

enum {
        CLI_EUSAGE = 2000, /* bad command line: the help hint is worth printing */
        CLI_EUNREACHABLE,  /* no answer from the daemon */
        CLI_EOPFAILED,     /* the operation ran and failed */
        CLI_EHTTP = 3000,  /* CLI_EHTTP + status: the daemon answered an error */
};

/* The ve_error code for an HTTP error status. */
int cli_http_error_code(long status);
/* The same for an error answer's "error" object: VE_ENOCOMMAND or VE_ECANNOTEXEC
 * when it carries exec's exit_code (127, 126), else cli_http_error_code(status). */
int cli_error_code(long status, json_t *error);

/* True when err holds the daemon's answer with this HTTP status. */
int cli_error_is_http(const struct ve_error *err, long status);

/* The process exit code for an error (never 0). */
int cli_exit_code(const struct ve_error *err);

/* The "Exit codes" section of `vectl --help`, kept next to the mapping. */
extern const char cli_exit_code_help[];

#endif
