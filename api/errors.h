/* The one place where error codes become HTTP statuses. */
#ifndef API_ERRORS_H
#define API_ERRORS_H

/* err->code (errno or VE_E*) -> HTTP status. */
unsigned api_status_for_code(int code);
const char *api_status_reason(unsigned status);

#endif
