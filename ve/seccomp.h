/* The seccomp filter of a VE's processes (libseccomp). Internal to ve/.
 *
 * Default allow, with a deny list of the system calls that reach across the
 * container boundary to objects the kernel does not namespace: kexec, kernel
 * modules, open_by_handle_at (the "shocker" escape: it opens any inode of a
 * filesystem by handle, ignoring the mount namespace), the kernel keyring, swap,
 * port I/O, BPF, perf, process accounting, the kernel log. Most answer EPERM, as
 * the kernel would for a missing capability; the keyring calls answer ENOSYS,
 * which systemd, ssh and the keyutils take as "no keyring here" and go on. The
 * filter covers the 32-bit (i386) and x32 system call tables too, so a 32-bit
 * binary in the VE can neither bypass it nor be killed by a bad-arch action.
 *
 * The filter is built once in the daemon (libseccomp allocates) and kept as a
 * plain BPF program, which a setup child loads with a single system call. It is
 * loaded without no_new_privs, so setuid binaries in the VE keep working: the
 * kernel allows that to a process with CAP_SYS_ADMIN in its user namespace, which
 * the VE's init and exec'd processes have before their execve. */
#ifndef VE_SECCOMP_H
#define VE_SECCOMP_H

#include <stdint.h>

#include "child.h"
#include "error.h"

/* Parent side: build the filter if it is not built yet (once per process;
 * thread-safe). Call it before cloning a child that will load it. */
int ve_seccomp_prepare(struct ve_error *err);

/* Child side: install the prepared filter on the calling thread. -EINVAL when
 * ve_seccomp_prepare() did not succeed first. */
int ve_seccomp_load(struct ve_child_err *e);

/* Child side, after ve_seccomp_load() and right before execve: install the
 * statfs notification filter (statfs_notify.h) and send its listener to
 * ve-statfsd over statfsd, a socket connected to it; nothing when statfsd < 0.
 * A VE's init (report >= 0) sends it as ADD_INIT and also sends a copy to the
 * daemon over its report socket (ve_child_send_fd()); an exec'd command sends
 * ADD. The filter applies to everything the process starts; one process can
 * have a single listener in its filters, so a VE cannot install another
 * (EBUSY). */
int ve_seccomp_load_notify(int statfsd, uint32_t ctid, int report, struct ve_child_err *e);

/* The prepared notification filter, for a test that runs it on made-up calls of
 * every architecture (this kernel may run no i386 code); NULL before
 * ve_seccomp_prepare() succeeds. */
struct sock_fprog;
const struct sock_fprog *ve_seccomp_notify_filter(void);

#endif
