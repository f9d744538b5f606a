/* df inside a VE: statfs() and fstatfs() of the VE's root file system answered
 * with the VE's own size.
 *
 * Why: a VE's private area is an ext4 file system larger than diskspace (the
 * headroom of disk.h), held to diskspace by reserved clusters. statfs() then
 * reports exact used and available blocks, but the file system's whole size:
 * df said "9.0G" for a 1 GiB VE. The kernel has no other source for the size
 * (ext4 project quota would be one, but needs QFMT_V2, which the hosts' kernels
 * may lack), so the answer is changed on its way to the VE: every VE process
 * runs under a second seccomp filter that turns statfs and fstatfs (and the
 * i386 table's statfs64 and fstatfs64) into user notifications, and one small
 * server per daemon instance (ve-statfsd, statfsd/main.c) answers them.
 *
 * The server is stateless about VEs. For each call it resolves the object the
 * process named, as the process would see it, and when that is on the same
 * ext4 file system as the process's root it answers with ve_statfs_transform()
 * of the real statfs, written into the process's buffer. Anything else (another
 * file system, a path it cannot resolve safely, another architecture) is let
 * through with SECCOMP_USER_NOTIF_FLAG_CONTINUE, which runs the real system call
 * in the process: CONTINUE never decides anything about security here, it only
 * means "not ours". Paths are resolved under the process's root
 * (RESOLVE_IN_ROOT, no magic links) and, for a process that is not the owner of
 * its root directory (a non-root user of the VE), with its fsuid, fsgid and
 * groups, so statfs() cannot probe files that user could not reach. The
 * process's memory is written only through /proc/<pid>/mem opened before the
 * notification was checked to be still alive (SECCOMP_IOCTL_NOTIF_ID_VALID), as
 * seccomp_unotify(2) prescribes against pid reuse.
 *
 * A filter's listener fd lives in the server; its VE processes block in
 * statfs() until it answers, and get ENOSYS once no process holds the listener.
 * So the server outlives the daemon (as lxcfs does), and a VE or exec child
 * sends its listener to the server itself, before its execve.
 *
 * Cost, on the development VM (2 vCPUs), of a statfs() in a loop, where the
 * kernel alone takes 1 us: 85 us when the server and the process woke each other
 * across CPUs (the wake-ups were two thirds of it); 35 us with the synchronous
 * wake-up (ve_statfs_notify_sync_wakeup()), 21 us for "/", which needs no
 * reading of the process's ids. A Debian VE's boot to "running" (0.7-1.4 s)
 * shows no difference within its noise. A 32-bit guest's calls (the i386
 * table's) and x32's are answered in their own layout (ve_statfs_encode()). */
#ifndef VE_STATFS_NOTIFY_H
#define VE_STATFS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statfs.h>
#include <sys/types.h>

/* The messages of ve-statfsd's socket. A child sends its listener (SCM_RIGHTS)
 * with ADD (an exec'd command) or ADD_INIT (a VE's init). The daemon keeps a
 * copy of each init's listener too, so that neither ve-statfsd's death nor the
 * daemon's closes it (the VE's statfs calls would fail with ENOSYS): after
 * starting ve-statfsd again it sends its copies with ADD_INIT, and after its own
 * restart it asks for them with LIST, answered by one ADD_INIT per init listener
 * and an END. QUIT stops the server.
 *
 * The server also keeps each running VE's console, so that it outlives the
 * daemon as the VE does: ADD_CONSOLE passes the console's pty master, a slave
 * fd of it (held so that the master never reads EIO while no VE process has
 * the console open), the init's pidfd (the console is dropped when init exits)
 * and console.log opened for appending. While a client that sent OWNER (the
 * daemon, for its whole life) is connected, the daemon drains the console;
 * when none is, the server appends what the VE writes to the log itself, so
 * the VE never blocks on its console. LIST also answers one ADD_CONSOLE per
 * console of a running init, with its master and slave. */
enum ve_statfsd_op {
        VE_STATFSD_ADD = 1,
        VE_STATFSD_QUIT = 2,
        VE_STATFSD_ADD_INIT = 3,
        VE_STATFSD_LIST = 4,
        VE_STATFSD_END = 5,
        VE_STATFSD_OWNER = 6,
        VE_STATFSD_ADD_CONSOLE = 7,
};

/* The fds of an ADD_CONSOLE, in this order. */
enum ve_statfsd_console_fd {
        VE_CONSOLE_MASTER,
        VE_CONSOLE_PEER,
        VE_CONSOLE_PIDFD,
        VE_CONSOLE_LOG,
        VE_STATFSD_FDS, /* the most fds a message carries */
};

/* Past this, console.log becomes console.log.1 and starts again from empty. */
#define VE_CONSOLE_LOG_MAX (1024 * 1024)

struct ve_statfsd_msg {
        uint32_t op;
        uint32_t ctid;
};

/* Send one message, with fd (SCM_RIGHTS) when fd >= 0. 0 or -errno. */
int ve_statfsd_send(int sock, uint32_t op, uint32_t ctid, int fd);
/* The same with fds[0..n) (n <= VE_STATFSD_FDS). */
int ve_statfsd_sendv(int sock, uint32_t op, uint32_t ctid, const int *fds, unsigned n);

/* Receive one message: 1 with *m and fds[0..VE_STATFSD_FDS) (O_CLOEXEC, -1 where
 * none came), 0 at EOF, -EBADMSG for a message of the wrong size or with lost
 * fds (none kept), else -errno. */
int ve_statfsd_recv(int sock, struct ve_statfsd_msg *m, int *fds);

/* Append buf to a console log (an O_APPEND fd). Past VE_CONSOLE_LOG_MAX, what it
 * holds is copied to the same path + ".1" (replacing the copy before) and it
 * starts again from empty. 0 or -errno. */
int ve_console_log_write(int log, const void *buf, size_t n);

/* What a VE may make a drainer or server do that no VE's cgroup pays for is
 * held to a rate, through a token bucket: past it, the VE waits (its console
 * writes, its statfs calls), not the host.
 *
 * A console is drained at VE_CONSOLE_RATE bytes a second, in bursts of up to
 * VE_CONSOLE_BURST (a Debian boot writes ~10 KB; a serial console takes
 * 11.5 KB/s): a loop writing to /dev/console kept ved at 70% of a CPU and slowed
 * every API request to 50 ms. A statfs filter is served VE_STATFS_RATE calls a
 * second, in bursts of VE_STATFS_BURST (df makes one call per mount; a call
 * costs ve-statfsd 20-35 us): a loop of statfs calls kept it at 85% of a CPU. */
#define VE_CONSOLE_RATE  (64u << 10)
#define VE_CONSOLE_BURST (256u << 10)
#define VE_STATFS_RATE   2000u
#define VE_STATFS_BURST  10000u

struct ve_bucket {
        double tokens;   /* what may be taken now; starts full */
        long long at_ms; /* CLOCK_MONOTONIC of the last refill; 0: never */
};

/* Take n (bytes read, calls served) at rate a second with burst: 0 when more
 * may be taken at once, else the milliseconds until `resume` more are back. */
unsigned ve_bucket_take(struct ve_bucket *b, double n, double rate, double burst, double resume);

/* The console's and the statfs filter's buckets. */
static inline unsigned ve_console_bucket_take(struct ve_bucket *b, size_t n)
{
        return ve_bucket_take(b, (double)n, VE_CONSOLE_RATE, VE_CONSOLE_BURST, 4096);
}

static inline unsigned ve_statfs_bucket_take(struct ve_bucket *b)
{
        return ve_bucket_take(b, 1, VE_STATFS_RATE, VE_STATFS_BURST, 100);
}

/* The abstract unix socket name of instance's server ("\0ved-statfsd/<instance>"):
 * fills addr's sun_path, returns the address length for bind() or connect(). */
struct sockaddr_un;
unsigned ve_statfsd_addr(const char *instance, struct sockaddr_un *addr);

/* The VE's view of its root file system: Size = Used + Avail. f_bfree becomes
 * f_bavail and f_blocks shrinks by the difference, so used blocks (f_blocks -
 * f_bfree) stay what they are and blocks that only the reservation holds back
 * (disk.h's headroom, ext4's own reserve, root's reserved blocks) are no longer
 * counted in the size. With the reservation of disk.h, Size is diskspace. */
void ve_statfs_transform(struct statfs *sfs);

/* The layouts a statfs answer takes: x86-64's (x32's too), and the i386
 * table's struct statfs (statfs, fstatfs: 32-bit fields) and struct statfs64
 * (statfs64, fstatfs64: packed to 4 bytes), the kernel's compat_statfs and
 * compat_statfs64. */
enum ve_statfs_layout { VE_STATFS_NATIVE, VE_STATFS_I386, VE_STATFS_I386_64 };

struct ve_statfs_i386 {
        uint32_t f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree;
        int32_t f_fsid[2];
        uint32_t f_namelen, f_frsize, f_flags, f_spare[4];
};

struct ve_statfs64_i386 {
        uint32_t f_type, f_bsize;
        uint64_t f_blocks, f_bfree, f_bavail, f_files, f_ffree;
        int32_t f_fsid[2];
        uint32_t f_namelen, f_frsize, f_flags, f_spare[4];
} __attribute__((packed, aligned(4)));

_Static_assert(sizeof(struct ve_statfs_i386) == 64, "i386 struct statfs");
_Static_assert(sizeof(struct ve_statfs64_i386) == 84, "i386 struct statfs64");

/* What a notified call asks (ve_statfs_notify_serve()): by path (args[0]) or by
 * fd, the layout of its answer and the buffer it goes to. 0, or 1 for a call that
 * is not a statfs of ours (any other, a statfs64 whose size argument the kernel
 * refuses with EINVAL), which the kernel then runs itself. */
struct seccomp_notif;
int ve_statfs_classify(const struct seccomp_notif *req, bool *by_fd, enum ve_statfs_layout *layout,
                       uint64_t *buf);

/* sfs in layout, written to out (room for a struct statfs): its size, or
 * -EOVERFLOW where 32-bit fields cannot hold it (f_files and f_ffree may be -1,
 * "no limit"), as the kernel's own answer would be. */
ssize_t ve_statfs_encode(const struct statfs *sfs, enum ve_statfs_layout layout, void *out);

/* Server side: receive one notification from listener (of VE ctid's processes)
 * and answer it: a statfs, or an x86-64 sysinfo (ve/sysinfo.h). 0 when answered
 * (or when the process went away meanwhile), -errno when the listener failed
 * (its filter is gone: close it). Never blocks longer than the lookups of one
 * path on the process's own file systems. */
int ve_statfs_notify_serve(int listener, uint32_t ctid);
/* Ask the kernel to hand a notification of listener, and its answer, over on
 * the CPU that sent it (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6): the
 * process and the server take turns rather than waking each other across CPUs.
 * Older kernels refuse it; the listener then works as before. */
void ve_statfs_notify_sync_wakeup(int listener);

#endif
