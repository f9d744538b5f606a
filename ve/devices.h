/* The VE's /dev: a fresh tmpfs holding only an allow-list of nodes. Internal to
 * ve/; child-safe (see child.h). */
#ifndef VE_DEVICES_H
#define VE_DEVICES_H

#include "child.h"

/* Mount a small tmpfs on the rootfs's /dev (checked not to be a symlink) with
 * null, zero, full, random, urandom and tty (mknod, mode 0666), console (a bind
 * mount of console_fd, the host-side pty slave /dev/pts/<console_index>, so the
 * daemon's master sees init's output), pts (a new devpts instance: the VE's ptys are invisible to the host's
 * and the other VEs'), ptmx -> pts/ptmx, shm (tmpfs), and the fd, stdin, stdout
 * and stderr symlinks. Runs before pivot_root; the caller's umask must be 0. */
int ve_devices_setup(int rootfd, int console_fd, unsigned console_index, struct ve_child_err *e);

#endif
