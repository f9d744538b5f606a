/* Capability bounding set of a VE's processes (libcap). */
#include "ve/caps.h"

#include <errno.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

static const int dropped[] = {
        CAP_SYS_MODULE, CAP_SYS_RAWIO,  CAP_SYS_TIME,      CAP_MAC_ADMIN,     CAP_MAC_OVERRIDE,
        CAP_SYSLOG,     CAP_WAKE_ALARM, CAP_BLOCK_SUSPEND, CAP_AUDIT_CONTROL, CAP_AUDIT_READ,
        CAP_SYS_PACCT,  CAP_BPF,        CAP_PERFMON,
};
#define N_DROPPED (sizeof(dropped) / sizeof(dropped[0]))

const int *ve_caps_dropped(size_t *n)
{
        *n = N_DROPPED;
        return dropped;
}

/* capget/capset are libcap's plain system call wrappers: nothing is allocated. */
static int clear_inheritable(struct ve_child_err *e)
{
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[2];

        memset(data, 0, sizeof(data));
        if (capget(&hdr, data) < 0)
                return ve_child_fail(e, errno, "capget");
        for (size_t i = 0; i < N_DROPPED; i++)
                data[dropped[i] / 32].inheritable &= ~(1u << (dropped[i] % 32));
        if (capset(&hdr, data) < 0)
                return ve_child_fail(e, errno, "capset");
        return 0;
}

int ve_caps_drop(struct ve_child_err *e)
{
        for (size_t i = 0; i < N_DROPPED; i++) {
                /* A capability this kernel does not know is not there to drop. */
                if (!CAP_IS_SUPPORTED(dropped[i]))
                        continue;
                if (cap_drop_bound(dropped[i]) < 0)
                        return ve_child_fail(e, errno, "drop capability %d from the bounding set",
                                             dropped[i]);
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return ve_child_fail(e, errno, "clear the ambient capabilities");
        return clear_inheritable(e);
}

bool ve_caps_have(int cap)
{
        cap_flag_value_t v = CAP_CLEAR;
        cap_t caps = cap_get_proc();

        if (caps == NULL)
                return false;
        if (cap_get_flag(caps, (cap_value_t)cap, CAP_EFFECTIVE, &v) < 0)
                v = CAP_CLEAR;
        cap_free(caps);
        return v == CAP_SET;
}
