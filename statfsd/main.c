/* ve-statfsd: answers statfs() and fstatfs() of VE processes with their VE's
 * own size (ve/statfs_notify.h). One per daemon instance, started by ved
 * (daemon/statfsd.c) and, like lxcfs, left running when ved exits while VEs
 * run: their statfs calls wait on it.
 *
 * It gets its listening socket as fd 3 (abstract, "\0ved-statfsd/<instance>",
 * bound by ved). A connection is accepted only from uid 0 of the host; each
 * message on it is a struct ve_statfsd_msg (ve/statfs_notify.h): ADD and
 * ADD_INIT carry a seccomp listener fd, LIST asks for the init listeners back,
 * QUIT ends the server. A listener stays until its filter has no process left
 * (POLLHUP). Single-threaded on purpose: open_as() switches the process's file
 * system credentials around one lookup. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "ve/statfs_notify.h"

#define LISTEN_FD 3

enum kind {
        LISTENING,
        CLIENT,
        FILTER,
};

struct entry {
        int fd;
        enum kind kind;
        uint32_t ctid;
        bool init; /* a VE init's listener (ADD_INIT) */
};

static struct entry *entries;
static struct pollfd *pfds;
static size_t count, cap;

static int add(int fd, enum kind kind, uint32_t ctid, bool init)
{
        if (count == cap) {
                size_t n = cap ? cap * 2 : 64;
                struct entry *e = realloc(entries, n * sizeof(*e));
                struct pollfd *p;

                if (e == NULL)
                        return -ENOMEM;
                entries = e;
                p = realloc(pfds, n * sizeof(*p));
                if (p == NULL)
                        return -ENOMEM;
                pfds = p;
                cap = n;
        }
        entries[count] = (struct entry){ .fd = fd, .kind = kind, .ctid = ctid, .init = init };
        pfds[count] = (struct pollfd){ .fd = fd, .events = POLLIN };
        count++;
        return 0;
}

/* Whether fd is the same open file as a listener already served: serving one
 * twice would make the second SECCOMP_IOCTL_NOTIF_RECV wait for the next call. */
static bool have_filter(int fd)
{
        pid_t self = getpid();

        for (size_t i = 0; i < count; i++)
                if (entries[i].kind == FILTER &&
                    syscall(SYS_kcmp, self, self, KCMP_FILE, entries[i].fd, fd) == 0)
                        return true;
        return false;
}

/* Swap-remove: the caller's loop revisits index i. */
static void drop(size_t i)
{
        close(entries[i].fd);
        count--;
        entries[i] = entries[count];
        pfds[i] = pfds[count];
}

static void accept_client(int lfd)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0)
                return;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
                fprintf(stderr, "ve-statfsd: refused a connection from uid %u\n",
                        (unsigned)cred.uid);
                close(fd);
                return;
        }
        if (add(fd, CLIENT, 0, false) < 0)
                close(fd);
}

/* LIST: every init listener back to the daemon, then END. Blocking: the daemon
 * reads them all at once, and only root can connect. */
static bool list_inits(int fd)
{
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return false;
        for (size_t i = 0; i < count; i++)
                if (entries[i].kind == FILTER && entries[i].init &&
                    ve_statfsd_send(fd, VE_STATFSD_ADD_INIT, entries[i].ctid, entries[i].fd) < 0)
                        return false;
        return ve_statfsd_send(fd, VE_STATFSD_END, 0, -1) == 0 && fcntl(fd, F_SETFL, flags) == 0;
}

/* One message of a client. false when the client is done (EOF or error). */
static bool read_client(int fd, bool *quit)
{
        struct ve_statfsd_msg m;
        int passed, ret = ve_statfsd_recv(fd, &m, &passed);

        if (ret == -EAGAIN)
                return true;
        if (ret == -EBADMSG) {
                fprintf(stderr, "ve-statfsd: a bad message, or a listener lost in transit "
                                "(out of fds?)\n");
                return true;
        }
        if (ret <= 0)
                return false;
        if ((m.op == VE_STATFSD_ADD || m.op == VE_STATFSD_ADD_INIT) && passed >= 0) {
                if (have_filter(passed)) {
                        close(passed);
                        return true;
                }
                if (add(passed, FILTER, m.ctid, m.op == VE_STATFSD_ADD_INIT) == 0) {
                        ve_statfs_notify_sync_wakeup(passed);
                        return true;
                }
                fprintf(stderr, "ve-statfsd: out of memory; VE %u gets ENOSYS from statfs\n",
                        m.ctid);
        } else if (m.op == VE_STATFSD_QUIT) {
                *quit = true;
        } else if (m.op == VE_STATFSD_LIST) {
                if (passed >= 0)
                        close(passed);
                return list_inits(fd);
        }
        if (passed >= 0)
                close(passed);
        return true;
}

static void serve_filter(size_t i, short revents)
{
        if (revents & POLLIN) {
                int ret = ve_statfs_notify_serve(entries[i].fd);

                if (ret < 0) {
                        fprintf(stderr, "ve-statfsd: VE %u: %s\n", entries[i].ctid, strerror(-ret));
                        drop(i);
                }
                return;
        }
        /* POLLHUP: no process uses the filter any more. */
        drop(i);
}

/* Every running VE and every live exec holds one listener here: lift the soft
 * fd limit to the hard one, or listeners past 1024 would be lost in transit
 * (MSG_CTRUNC) and their processes would get ENOSYS. And the OOM killer must
 * not pick this small process: every VE's statfs waits on it. */
static void settle(void)
{
        struct rlimit rl;
        int fd;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                if (write(fd, "-1000", 5) != 5)
                        perror("ve-statfsd: oom_score_adj");
                close(fd);
        }
}

int main(void)
{
        bool quit = false;

        prctl(PR_SET_NAME, "ve-statfsd", 0, 0, 0);
        signal(SIGPIPE, SIG_IGN);
        settle();
        if (add(LISTEN_FD, LISTENING, 0, false) < 0)
                return 1;
        while (!quit) {
                if (poll(pfds, count, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("ve-statfsd: poll");
                        return 1;
                }
                /* Backwards, so that drop()'s swap never skips an entry. */
                for (size_t i = count; i-- > 0;) {
                        short revents = pfds[i].revents;

                        if (revents == 0)
                                continue;
                        pfds[i].revents = 0;
                        if (entries[i].kind == LISTENING)
                                accept_client(entries[i].fd);
                        else if (entries[i].kind == CLIENT) {
                                if (!read_client(entries[i].fd, &quit))
                                        drop(i);
                        } else {
                                serve_filter(i, revents);
                        }
                }
        }
        return 0;
}
