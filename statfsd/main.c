/* ve-statfsd: answers statfs() and fstatfs() of VE processes with their VE's
 * own size (ve/statfs_notify.h). One per daemon instance, started by ved
 * (daemon/statfsd.c) and, like lxcfs, left running when ved exits while VEs
 * run: their statfs calls wait on it.
 *
 * It gets its listening socket as fd 3 (abstract, "\0ved-statfsd/<instance>",
 * bound by ved). A connection is accepted only from uid 0 of the host; each
 * message on it is a struct ve_statfsd_msg, an ADD carrying a seccomp listener
 * fd. A listener stays until its filter has no process left (POLLHUP). QUIT
 * ends the server. Single-threaded on purpose: open_as() switches the process's
 * file system credentials around one lookup. */
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
#include <unistd.h>

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
};

static struct entry *entries;
static struct pollfd *pfds;
static size_t count, cap;

static int add(int fd, enum kind kind, uint32_t ctid)
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
        entries[count] = (struct entry){ .fd = fd, .kind = kind, .ctid = ctid };
        pfds[count] = (struct pollfd){ .fd = fd, .events = POLLIN };
        count++;
        return 0;
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
        if (add(fd, CLIENT, 0) < 0)
                close(fd);
}

/* One message of a client. false when the client is done (EOF or error). */
static bool read_client(int fd, bool *quit)
{
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct ve_statfsd_msg m;
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        struct msghdr msg = { .msg_iov = &iov,
                              .msg_iovlen = 1,
                              .msg_control = cbuf,
                              .msg_controllen = sizeof(cbuf) };
        ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        int passed = -1;

        if (n < 0)
                return errno == EAGAIN || errno == EINTR;
        if (n == 0)
                return false;
        if (msg.msg_flags & MSG_CTRUNC)
                fprintf(stderr, "ve-statfsd: a listener was lost in transit (out of fds?)\n");
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                    c->cmsg_len == CMSG_LEN(sizeof(int)))
                        memcpy(&passed, CMSG_DATA(c), sizeof(int));
        if (n == sizeof(m) && m.op == VE_STATFSD_ADD && passed >= 0) {
                if (add(passed, FILTER, m.ctid) == 0)
                        return true;
                fprintf(stderr, "ve-statfsd: out of memory; VE %u gets ENOSYS from statfs\n",
                        m.ctid);
        } else if (n == sizeof(m) && m.op == VE_STATFSD_QUIT) {
                *quit = true;
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
                        fprintf(stderr, "ve-statfsd: VE %u: %s\n", entries[i].ctid,
                                strerror(-ret));
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
        if (add(LISTEN_FD, LISTENING, 0) < 0)
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
