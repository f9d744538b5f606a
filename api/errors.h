/* The one place where error codes become HTTP statuses. */
#ifndef API_ERRORS_H
#define API_ERRORS_H

/* err->code (errno or VE_E*) -> HTTP status. */
unsigned api_status_for_code(int code);
/* The exit status a shell gives a command it cannot run (127 not found, 126 not
 * executable) for VE_ENOCOMMAND and VE_ECANNOTEXEC; -1 for any other code. */
int api_exit_code_for(int code);
const char *api_status_reason(unsigned status);

#endif
