/* The VE's seccomp filter: built with libseccomp, exported as BPF, loaded raw. */
#include "ve/seccomp.h"

#include <errno.h>
#include <pthread.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "ve/cleanup.h"
#include "ve/statfs_notify.h"

struct rule {
        const char *name;
        int err;
};

static const struct rule rules[] = {
        { "kexec_load", EPERM },
        { "kexec_file_load", EPERM },
        { "init_module", EPERM },
        { "finit_module", EPERM },
        { "delete_module", EPERM },
        { "open_by_handle_at", EPERM },
        { "iopl", EPERM },
        { "ioperm", EPERM },
        { "swapon", EPERM },
        { "swapoff", EPERM },
        { "syslog", EPERM },
        { "acct", EPERM },
        { "bpf", EPERM },
        { "perf_event_open", EPERM },
        { "lookup_dcookie", EPERM },
        { "uselib", EPERM },
        { "nfsservctl", EPERM },
        { "vm86", EPERM },
        { "vm86old", EPERM },
        { "userfaultfd", EPERM },
        { "add_key", ENOSYS },
        { "keyctl", ENOSYS },
        { "request_key", ENOSYS },
        /* io_uring: a large, often-fixed kernel surface that Docker's default
         * profile and most hosting kernels shut off too. ENOSYS, so that what
         * uses it (liburing, QEMU, databases) falls back to plain I/O. */
        { "io_uring_setup", ENOSYS },
        { "io_uring_enter", ENOSYS },
        { "io_uring_register", ENOSYS },
};

/* Built once; read-only afterwards, so children and threads share them. */
static struct sock_fprog filter;
static struct sock_fprog notify_filter;
static int build_ret;
static char build_msg[256];
static pthread_once_t build_once = PTHREAD_ONCE_INIT;

static int add_rules(scmp_filter_ctx ctx)
{
        for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
                int nr = seccomp_syscall_resolve_name(rules[i].name);
                int ret;

                /* Not a call of any architecture in the filter (vm86 on x86-64 only
                 * exists in the i386 table, which resolves it there). */
                if (nr == __NR_SCMP_ERROR)
                        continue;
                ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t)rules[i].err), nr, 0);
                if (ret < 0) {
                        snprintf(build_msg, sizeof(build_msg), "seccomp rule for %s",
                                 rules[i].name);
                        return ret;
                }
        }
        return 0;
}

/* The i386 and x32 tables of an x86-64 kernel are entry points of their own. */
static int add_arches(scmp_filter_ctx ctx)
{
        int ret;

        if (seccomp_arch_native() != SCMP_ARCH_X86_64)
                return 0;
        ret = seccomp_arch_add(ctx, SCMP_ARCH_X86);
        if (ret == 0 || ret == -EEXIST)
                ret = seccomp_arch_add(ctx, SCMP_ARCH_X32);
        if (ret < 0 && ret != -EEXIST) {
                snprintf(build_msg, sizeof(build_msg), "seccomp architectures");
                return ret;
        }
        return 0;
}

/* libseccomp 2.5 exports BPF only to an fd: go through a memfd. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog *out)
{
        _cleanup_close_ int fd = -EBADF;
        struct sock_filter *prog;
        struct stat st;
        int ret;

        fd = memfd_create("ve-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        ret = seccomp_export_bpf(ctx, fd);
        if (ret < 0)
                return ret;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size == 0 || st.st_size % (off_t)sizeof(*prog) != 0 ||
            st.st_size / (off_t)sizeof(*prog) > BPF_MAXINSNS)
                return -EINVAL;
        prog = malloc((size_t)st.st_size);
        if (prog == NULL)
                return -ENOMEM;
        if (pread(fd, prog, (size_t)st.st_size, 0) != st.st_size) {
                free(prog);
                return -EIO;
        }
        out->len = (unsigned short)(st.st_size / (off_t)sizeof(*prog));
        out->filter = prog;
        return 0;
}

/* The second filter (statfs_notify.h): statfs, fstatfs, sysinfo (sysinfo.h) and,
 * in the i386 table, statfs64 and fstatfs64 become user notifications, in every
 * architecture of the first filter (a 32-bit guest's df calls statfs64);
 * everything else is left to the first filter. */
static const char *const notify_calls[] = { "statfs", "fstatfs", "statfs64", "fstatfs64",
                                            "sysinfo" };

static int build_notify(void)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int ret;

        if (ctx == NULL) {
                snprintf(build_msg, sizeof(build_msg), "build the statfs notification filter");
                return -ENOMEM;
        }
        ret = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
        if (ret == 0)
                ret = add_arches(ctx);
        for (size_t i = 0; ret == 0 && i < sizeof(notify_calls) / sizeof(notify_calls[0]); i++) {
                int nr = seccomp_syscall_resolve_name(notify_calls[i]);

                /* No call of any architecture in the filter (statfs64 outside
                 * x86); x86-64's own table lacks it, so its rule goes only to
                 * i386's. */
                if (nr == __NR_SCMP_ERROR)
                        continue;
                ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 0);
                if (ret < 0)
                        snprintf(build_msg, sizeof(build_msg), "statfs notification rule for %s",
                                 notify_calls[i]);
        }
        if (ret == 0) {
                snprintf(build_msg, sizeof(build_msg), "export the statfs notification filter");
                ret = export_bpf(ctx, &notify_filter);
        }
        seccomp_release(ctx);
        return ret;
}

static void build(void)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int ret;

        snprintf(build_msg, sizeof(build_msg), "build the seccomp filter");
        if (ctx == NULL) {
                build_ret = -ENOMEM;
                return;
        }
        ret = add_arches(ctx);
        if (ret == 0)
                ret = add_rules(ctx);
        if (ret == 0) {
                snprintf(build_msg, sizeof(build_msg), "export the seccomp filter");
                ret = export_bpf(ctx, &filter);
        }
        seccomp_release(ctx);
        if (ret == 0)
                ret = build_notify();
        build_ret = ret;
}

int ve_seccomp_prepare(struct ve_error *err)
{
        pthread_once(&build_once, build);
        if (build_ret < 0)
                return ve_error_errno(err, -build_ret, "%s", build_msg);
        return 0;
}

int ve_seccomp_load(struct ve_child_err *e)
{
        if (filter.filter == NULL)
                return ve_child_fail_plain(e, EINVAL, "the seccomp filter was not prepared");
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) < 0)
                return ve_child_fail(e, errno, "load the seccomp filter");
        return 0;
}

const struct sock_fprog *ve_seccomp_notify_filter(void)
{
        return notify_filter.filter != NULL ? &notify_filter : NULL;
}

int ve_seccomp_load_notify(int statfsd, uint32_t ctid, int report, struct ve_child_err *e)
{
        int fd, ret;

        if (statfsd < 0)
                return 0;
        if (notify_filter.filter == NULL)
                return ve_child_fail_plain(e, EINVAL, "the seccomp filter was not prepared");
        fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                          &notify_filter);
        if (fd < 0)
                return ve_child_fail(e, errno, "load the statfs notification filter");
        /* Without the server's copy (or the daemon's), statfs would fail with
         * ENOSYS in everything this process starts. */
        ret =
            ve_statfsd_send(statfsd, report >= 0 ? VE_STATFSD_ADD_INIT : VE_STATFSD_ADD, ctid, fd);
        if (ret < 0)
                ret = ve_child_fail(e, ret, "hand the statfs filter to ve-statfsd");
        if (ret == 0 && report >= 0 && ve_child_send_fd(report, fd) < 0)
                ret = ve_child_fail(e, errno, "hand the statfs filter to the daemon");
        close(fd);
        return ret;
}
