#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ve_error_setv(struct ve_error *err, int code, const char *fmt, va_list ap)
{
        char *msg = NULL;

        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        if (err == NULL)
                return -code;
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        free(err->message);
        err->message = msg;
        err->code = code;
        return -code;
}

int ve_error_set(struct ve_error *err, int code, const char *fmt, ...)
{
        va_list ap;
        int ret;

        va_start(ap, fmt);
        ret = ve_error_setv(err, code, fmt, ap);
        va_end(ap);
        return ret;
}

int ve_error_errno(struct ve_error *err, int code, const char *fmt, ...)
{
        va_list ap;
        int ret;

        if (code < 0)
                code = -code;
        va_start(ap, fmt);
        ret = ve_error_setv(err, code, fmt, ap);
        va_end(ap);
        if (err != NULL && err->message != NULL && code > 0 && code < VE_EBASE) {
                char *msg = NULL;

                if (asprintf(&msg, "%s: %s", err->message, strerror(code)) >= 0) {
                        free(err->message);
                        err->message = msg;
                }
        }
        return ret;
}

int ve_error_prefix(struct ve_error *err, const char *fmt, ...)
{
        char *prefix = NULL, *msg = NULL;
        va_list ap;

        if (err == NULL)
                return -EIO;
        va_start(ap, fmt);
        if (vasprintf(&prefix, fmt, ap) < 0)
                prefix = NULL;
        va_end(ap);
        if (prefix != NULL &&
            asprintf(&msg, "%s: %s", prefix, err->message ? err->message : "error") >= 0) {
                free(err->message);
                err->message = msg;
        }
        free(prefix);
        if (err->code == 0)
                err->code = EIO;
        return -err->code;
}

void ve_error_move(struct ve_error *dst, struct ve_error *src)
{
        ve_error_clear(dst);
        *dst = *src;
        src->code = 0;
        src->message = NULL;
}

void ve_error_clear(struct ve_error *err)
{
        if (err == NULL)
                return;
        free(err->message);
        err->message = NULL;
        err->code = 0;
}
