/* Error convention of ved (after crun's error_handling.md).
 *
 * A function that can fail returns a negative errno value (or NULL) and fills a
 * struct ve_error with a message saying what was being done. Callers add context
 * as the error travels up with ve_error_prefix(). Library code never prints and
 * never exits: the daemon logs or maps the error, the CLI prints it.
 *
 * `code` is an errno value (positive) or one of the VE_E* codes below, which carry
 * meanings errno has no word for; the API maps both to HTTP statuses in one place
 * (api/errors.c). A struct ve_error starts zeroed; ve_error_clear() frees it.
 */
#ifndef VE_ERROR_H
#define VE_ERROR_H

#include <stdarg.h>

/* Domain errors beyond errno: chosen above any errno value. */
enum {
        VE_EBASE = 1000,
        VE_EINVAL_INPUT,  /* the request itself is wrong: 400 */
        VE_ENOTFOUND,     /* the named thing does not exist: 404 */
        VE_ECONFLICT,     /* state or uniqueness conflict: 409 */
        VE_EPRECONDITION, /* If-Match did not match: 412 */
        VE_ETOOLARGE,     /* body or field too large: 413 */
        VE_EMETHOD,       /* method not allowed on the route: 405 */
        VE_EUNSUPPORTED,  /* valid request this host cannot do: 501 */
        VE_ENOCOMMAND,    /* the command to run is not in the VE: 400, a shell's 127 */
        VE_ECANNOTEXEC,   /* it is there but cannot be executed: 400, a shell's 126 */
};

struct ve_error {
        int code;      /* 0 when no error */
        char *message; /* malloc'd, NULL when no error */
};

/* Set the error (replacing any earlier one) and return -code, so a caller can write
 * `return ve_error_set(err, errno, "mount %s", path);`. err may be NULL. */
int ve_error_set(struct ve_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ve_error_setv(struct ve_error *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Like ve_error_set(), with ": strerror(code)" appended when code is an errno value. */
int ve_error_errno(struct ve_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "context: " to the message; returns -err->code. */
int ve_error_prefix(struct ve_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Move src into dst (dst is cleared first); src is left empty. */
void ve_error_move(struct ve_error *dst, struct ve_error *src);

void ve_error_clear(struct ve_error *err);

#endif
