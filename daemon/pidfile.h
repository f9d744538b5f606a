/* The servers ved starts and that outlive it (lxcfs, ve-statfsd): starting them
 * apart from the daemon, and finding them again by their pid files. */
#ifndef VED_PIDFILE_H
#define VED_PIDFILE_H

#include <sys/types.h>

/* The pid in pidfile when it is a live process named comm (its /proc/<pid>/comm),
 * else 0: the file may be stale and its pid reused. Reads /proc only. */
pid_t ved_pidfile_alive(const char *pidfile, const char *comm);
/* The same without the name's check, for a pidfile ved_spawn_detached() has just
 * written: the server may not have reached its execve yet. */
pid_t ved_pidfile_fresh(const char *pidfile);

/* Run path with argv in a session of its own, reparented away from the daemon
 * (double fork), with stdin from /dev/null, stdout and stderr appended to logfile,
 * pass_fd (>= 0) as its fd 3 and no other fd of the daemon's, every signal
 * unblocked. pidfile non-NULL: its pid is written there (else the server writes
 * its own). 0 once it was started, or -errno. */
int ved_spawn_detached(const char *path, char *const argv[], const char *logfile, int pass_fd,
                       const char *pidfile);

#endif
