/* The pid files of the servers ved starts and that outlive it (lxcfs,
 * ve-statfsd). */
#ifndef VED_PIDFILE_H
#define VED_PIDFILE_H

#include <sys/types.h>

/* The pid in pidfile when it is a live process named comm (its /proc/<pid>/comm),
 * else 0: the file may be stale and its pid reused. Reads /proc only. */
pid_t ved_pidfile_alive(const char *pidfile, const char *comm);

#endif
