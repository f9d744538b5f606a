/* ve-statfsd: answers statfs() and fstatfs() of VE processes with their VE's
 * own size (ve/statfs_notify.h). One per daemon instance, started by ved
 * (daemon/statfsd.c) and, like lxcfs, left running when ved exits while VEs
 * run: their statfs calls wait on it.
 *
 * It gets its listening socket as fd 3 (abstract, "\0ved-statfsd/<instance>",
 * bound by ved). A connection is accepted only from uid 0 of the host; each
 * message on it is a struct ve_statfsd_msg (ve/statfs_notify.h): ADD and
 * ADD_INIT carry a seccomp listener fd, ADD_CONSOLE a VE's console, LIST asks
 * for the init listeners and consoles back, OWNER marks the daemon's
 * connection, QUIT ends the server. A listener stays until its filter has no
 * process left (POLLHUP), a console until its init exits. Single-threaded on
 * purpose: open_as() switches the process's file system credentials around one
 * lookup. */
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
#include <time.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "ve/statfs_notify.h"

#define LISTEN_FD 3

enum kind {
        LISTENING,
        CLIENT,
        FILTER,
        CONSOLE,     /* fd: the pty master */
        CONSOLE_PID, /* fd: the pidfd of that console's init */
};

struct entry {
        int fd;
        enum kind kind;
        uint32_t ctid;
        bool init;               /* FILTER: a VE init's listener (ADD_INIT) */
        bool owner;              /* CLIENT: sent OWNER */
        bool dead;               /* CONSOLE, CONSOLE_PID: init exited; dropped after this round */
        int peer;                /* CONSOLE: a slave fd of the pty */
        int log;                 /* CONSOLE: console.log, or -1 */
        int pidfd;               /* CONSOLE: its CONSOLE_PID entry's fd (owned there) */
        long long wake_at;       /* CONSOLE, FILTER: asleep (out of the poll set) until */
        struct ve_bucket bucket; /* CONSOLE, FILTER: its rate (statfs_notify.h) */
};

static struct entry *entries;
static struct pollfd *pfds;
static size_t count, cap;
static unsigned owners; /* connected clients that sent OWNER */

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
        entries[count] = (struct entry){ .fd = fd,
                                         .kind = kind,
                                         .ctid = ctid,
                                         .init = init,
                                         .peer = -1,
                                         .log = -1,
                                         .pidfd = -1 };
        pfds[count] = (struct pollfd){ .fd = fd, .events = POLLIN };
        count++;
        return 0;
}

/* Whether fd is the same open file as an entry of kind already kept: serving a
 * listener twice would make the second SECCOMP_IOCTL_NOTIF_RECV wait for the next
 * call, and a console kept twice would be drained twice. */
static bool have_file(enum kind kind, int fd)
{
        pid_t self = getpid();

        for (size_t i = 0; i < count; i++)
                if (entries[i].kind == kind &&
                    syscall(SYS_kcmp, self, self, KCMP_FILE, entries[i].fd, fd) == 0)
                        return true;
        return false;
}

/* Consoles are read here only while no daemon is connected to read them. */
static void console_events(void)
{
        for (size_t i = 0; i < count; i++)
                if (entries[i].kind == CONSOLE)
                        pfds[i].events = owners > 0 ? 0 : POLLIN;
}

/* Swap-remove: the caller's loop revisits index i. */
static void drop(size_t i)
{
        close(entries[i].fd);
        if (entries[i].peer >= 0)
                close(entries[i].peer);
        if (entries[i].log >= 0)
                close(entries[i].log);
        if (entries[i].kind == CLIENT && entries[i].owner && --owners == 0)
                console_events();
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
        for (size_t i = 0; i < count; i++) {
                struct pollfd exited = { .fd = entries[i].pidfd, .events = POLLIN };
                int pass[] = { entries[i].fd, entries[i].peer };

                if (entries[i].kind != CONSOLE || entries[i].dead || poll(&exited, 1, 0) != 0)
                        continue;
                if (ve_statfsd_sendv(fd, VE_STATFSD_ADD_CONSOLE, entries[i].ctid, pass, 2) < 0)
                        return false;
        }
        return ve_statfsd_send(fd, VE_STATFSD_END, 0, -1) == 0 && fcntl(fd, F_SETFL, flags) == 0;
}

static void close_all(int *fds)
{
        for (unsigned i = 0; i < VE_STATFSD_FDS; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}

/* ADD_CONSOLE: keep the console (fds per enum ve_statfsd_console_fd) and watch
 * its init. Takes the fds. */
static void add_console(uint32_t ctid, int *fds)
{
        int master = fds[VE_CONSOLE_MASTER], pidfd = fds[VE_CONSOLE_PIDFD];

        if (master < 0 || fds[VE_CONSOLE_PEER] < 0 || pidfd < 0 || have_file(CONSOLE, master)) {
                close_all(fds);
                return;
        }
        if (add(pidfd, CONSOLE_PID, ctid, false) < 0) {
                close_all(fds);
                return;
        }
        if (add(master, CONSOLE, ctid, false) < 0) {
                count--; /* the CONSOLE_PID just added */
                close_all(fds);
                return;
        }
        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        entries[count - 1].peer = fds[VE_CONSOLE_PEER];
        entries[count - 1].log = fds[VE_CONSOLE_LOG];
        entries[count - 1].pidfd = pidfd;
        pfds[count - 1].events = owners > 0 ? 0 : POLLIN;
}

/* One message of a client. false when the client is done (EOF or error). */
static bool read_client(size_t i, bool *quit)
{
        struct ve_statfsd_msg m;
        int fds[VE_STATFSD_FDS], fd = entries[i].fd, passed;
        int ret = ve_statfsd_recv(fd, &m, fds);

        if (ret == -EAGAIN)
                return true;
        if (ret == -EBADMSG) {
                fprintf(stderr, "ve-statfsd: a bad message, or fds lost in transit "
                                "(out of fds?)\n");
                return true;
        }
        if (ret <= 0)
                return false;
        if (m.op == VE_STATFSD_ADD_CONSOLE) {
                add_console(m.ctid, fds);
                return true;
        }
        passed = fds[0];
        for (unsigned k = 1; k < VE_STATFSD_FDS; k++)
                if (fds[k] >= 0)
                        close(fds[k]);
        if ((m.op == VE_STATFSD_ADD || m.op == VE_STATFSD_ADD_INIT) && passed >= 0) {
                if (have_file(FILTER, passed)) {
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
        } else if (m.op == VE_STATFSD_OWNER) {
                if (!entries[i].owner) {
                        entries[i].owner = true;
                        if (owners++ == 0)
                                console_events();
                }
        } else if (m.op == VE_STATFSD_LIST) {
                if (passed >= 0)
                        close(passed);
                return list_inits(fd);
        }
        if (passed >= 0)
                close(passed);
        return true;
}

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A console that wrote faster than its rate, or that no VE process has open (a
 * getty's vhangup() closes even the slave fd kept here: it reads EIO and polls
 * POLLHUP until one opens it again), sleeps out of the poll set for a while. */
#define CONSOLE_RETRY_MS 1000

static void entry_sleep(size_t i, unsigned ms)
{
        pfds[i].fd = -1;
        entries[i].wake_at = now_ms() + ms;
}

/* Wakes the entries whose time has come; the poll timeout until the next. */
static int poll_timeout(void)
{
        long long now = 0, next = -1;

        for (size_t i = 0; i < count; i++) {
                if (entries[i].wake_at == 0)
                        continue;
                if (now == 0)
                        now = now_ms();
                if (entries[i].wake_at <= now) {
                        entries[i].wake_at = 0;
                        pfds[i].fd = entries[i].fd;
                } else if (next < 0 || entries[i].wake_at - now < next) {
                        next = entries[i].wake_at - now;
                }
        }
        return (int)next;
}

/* What a VE wrote to its console while no daemon reads it. */
static void drain_console(size_t i, short revents)
{
        struct entry *e = &entries[i];
        char buf[4096];
        ssize_t n = (revents & POLLIN) ? read(e->fd, buf, sizeof(buf)) : 0;

        if (n > 0) {
                unsigned wait = ve_console_bucket_take(&e->bucket, (size_t)n);

                if (e->log >= 0)
                        ve_console_log_write(e->log, buf, (size_t)n);
                if (wait > 0)
                        entry_sleep(i, wait);
                return;
        }
        if (n < 0 && errno == EAGAIN)
                return;
        entry_sleep(i, CONSOLE_RETRY_MS);
}

/* A console's init exited: mark it and its CONSOLE_PID entry for the sweep. */
static void console_exited(int pidfd)
{
        for (size_t i = 0; i < count; i++)
                if ((entries[i].kind == CONSOLE && entries[i].pidfd == pidfd) ||
                    (entries[i].kind == CONSOLE_PID && entries[i].fd == pidfd))
                        entries[i].dead = true;
}

static void serve_filter(size_t i, short revents)
{
        if (revents & POLLIN) {
                int ret = ve_statfs_notify_serve(entries[i].fd, entries[i].ctid);
                unsigned wait;

                if (ret < 0) {
                        fprintf(stderr, "ve-statfsd: VE %u: %s\n", entries[i].ctid, strerror(-ret));
                        drop(i);
                        return;
                }
                /* Past its rate, the VE's statfs calls wait, not the host. */
                wait = ve_statfs_bucket_take(&entries[i].bucket);
                if (wait > 0)
                        entry_sleep(i, wait);
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
                if (poll(pfds, count, poll_timeout()) < 0) {
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
                                if (!read_client(i, &quit))
                                        drop(i);
                        } else if (entries[i].kind == CONSOLE_PID) {
                                console_exited(entries[i].fd);
                        } else if (entries[i].kind == CONSOLE) {
                                drain_console(i, revents);
                        } else {
                                serve_filter(i, revents);
                        }
                }
                for (size_t i = count; i-- > 0;)
                        if (entries[i].dead)
                                drop(i);
        }
        return 0;
}
