#include "errors.h"

#include <errno.h>

#include "ve/error.h"

unsigned api_status_for_code(int code)
{
        switch (code) {
        case VE_EINVAL_INPUT:
        case VE_ENOCOMMAND:
        case VE_ECANNOTEXEC:
        case EINVAL:
        case ERANGE:
        case ENAMETOOLONG:
                return 400;
        case VE_ENOTFOUND:
        case ENOENT:
                return 404;
        case VE_EMETHOD:
                return 405;
        case VE_ECONFLICT:
        case EEXIST:
        case EBUSY:
        case ENOTEMPTY:
        case EALREADY:
                return 409;
        case VE_EPRECONDITION:
                return 412;
        case VE_ETOOLARGE:
        case EFBIG:
                return 413;
        case VE_EUNSUPPORTED:
        case ENOSYS:
        case EOPNOTSUPP:
                return 501;
        case ENOSPC:
        case EAGAIN:
                return 503;
        default:
                return 500;
        }
}

int api_exit_code_for(int code)
{
        return code == VE_ENOCOMMAND ? 127 : code == VE_ECANNOTEXEC ? 126 : -1;
}

const char *api_status_reason(unsigned status)
{
        switch (status) {
        case 400:
                return "bad request";
        case 404:
                return "not found";
        case 405:
                return "method not allowed";
        case 409:
                return "conflict";
        case 412:
                return "precondition failed";
        case 413:
                return "request too large";
        case 415:
                return "unsupported media type";
        case 501:
                return "not implemented";
        case 503:
                return "unavailable";
        default:
                return "error";
        }
}
