#include "exitcode.h"

const char cli_exit_code_help[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  generic or server error (HTTP 5xx)\n"
    "  2  usage error: bad option or value, caught by vectl\n"
    "  3  cannot reach the daemon\n"
    "  4  not found (HTTP 404)\n"
    "  5  conflict (HTTP 409, 412)\n"
    "  6  invalid request (HTTP 400, 405, 413, 415, 422 and other 4xx)\n"
    "  7  an operation finished as failed\n"
    "  exec and enter exit with the command's own status instead (128+N when\n"
    "  signal N ended it), once ved has started it; 127 when the VE has no such\n"
    "  command, 126 when it cannot be executed, as a shell\n";

int cli_http_error_code(long status)
{
        return CLI_EHTTP + (int)status;
}

int cli_error_code(long status, json_t *error)
{
        json_int_t exit_code = json_integer_value(json_object_get(error, "exit_code"));

        /* exec: a command the VE could not run, which a shell reports with 127/126. */
        if (exit_code == 127)
                return VE_ENOCOMMAND;
        if (exit_code == 126)
                return VE_ECANNOTEXEC;
        return cli_http_error_code(status);
}

int cli_error_is_http(const struct ve_error *err, long status)
{
        return err->code == cli_http_error_code(status);
}

static int exit_for_status(long status)
{
        switch (status) {
        case 404:
                return CLI_EXIT_NOTFOUND;
        case 409:
        case 412:
                return CLI_EXIT_CONFLICT;
        default:
                break;
        }
        if (status >= 400 && status < 500)
                return CLI_EXIT_INVALID;
        return CLI_EXIT_ERROR;
}

int cli_exit_code(const struct ve_error *err)
{
        if (err->code >= CLI_EHTTP)
                return exit_for_status(err->code - CLI_EHTTP);
        switch (err->code) {
        case CLI_EUSAGE:
        case VE_EINVAL_INPUT: /* a value vectl checked before sending it */
                return CLI_EXIT_USAGE;
        case CLI_EUNREACHABLE:
                return CLI_EXIT_UNREACHABLE;
        case CLI_EOPFAILED:
                return CLI_EXIT_OPFAILED;
        case VE_ENOCOMMAND:
                return 127;
        case VE_ECANNOTEXEC:
                return 126;
        default:
                return CLI_EXIT_ERROR;
        }
}
