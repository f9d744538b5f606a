/* ve-statfsd (ve/statfs_notify.h), started and supervised by ved, so that df in
 * a VE shows the VE's diskspace.
 *
 * One server per daemon instance, listening on the abstract unix socket
 * "\0ved-statfsd/<instance>" (reachable from the host's network namespace only,
 * and it accepts uid 0 only). Like lxcfs it is not the daemon's child and
 * outlives it: the statfs calls of running VEs wait on it. The daemon finds it
 * again by connecting, checks it every second and starts it again if it died.
 * The daemon holds a copy of each running VE's init listener (struct
 * ve_proc.statfs_fd), so neither's death closes it: a new server gets the
 * copies, and a restarted daemon asks the server for them. Only when both die
 * together do running VEs lose it (their statfs then fails with ENOSYS until
 * they restart; the log says so). When the daemon stops and no VE runs, it is
 * told to quit.
 * It keeps each running VE's console too (its pty master and a slave fd), so a
 * VE's console outlives the daemon: while the daemon is connected (OWNER) the
 * daemon drains it into ves/<ctid>/console.log, while it is not the server
 * does, and a restarted daemon takes the console back.
 * Its pid is in <state>/statfsd.pid, its messages in <state>/statfsd.log. A VE
 * started while no server answers runs without it (df shows the file system's
 * size) and gets a ve.degraded event. */
#ifndef VED_STATFSD_H
#define VED_STATFSD_H

#include <stdbool.h>
#include <stdint.h>

#include "ved.h"

/* Find or start the server (startup; loop thread). Never fails the daemon. */
void ved_statfsd_start(struct ved *v);

/* A socket connected to the server for one start or exec (O_CLOEXEC; the
 * caller closes it once the child has execve'd), or -errno when none answers.
 * Thread-safe. */
int ved_statfsd_connect(void);

/* Give the server a copy of a started VE's console (p's master, slave and
 * pidfd; dir is ves/<ctid>, for its console.log). 0 or -errno. Thread-safe. */
struct ve_proc;
int ved_statfsd_give_console(int sock, uint32_t ctid, const struct ve_proc *p, const char *dir);

/* Whether the server answered when last started (GET /v1/host). */
bool ved_statfsd_up(void);

/* Startup, once the running VEs are adopted: take their listener copies and
 * consoles back from a server that outlived the previous daemon. */
void ved_statfsd_collect(struct ved *v);

/* Start the server again if it died (the daemon's periodic check), and give it
 * the running VEs' listeners. */
void ved_statfsd_check(struct ved *v);

/* Daemon exit: tell the server to quit unless a VE still runs. */
void ved_statfsd_stop(struct ved *v, bool ves_running);

#endif
