/* Pseudo-terminals for a VE's console and for `vectl enter`. Internal to ve/.
 * Only system calls, so both are safe in a child between clone and execve. */
#ifndef VE_CONSOLE_H
#define VE_CONSOLE_H

/* Open a new pty from the multiplexer at ptmx ("/dev/ptmx" resolves in the
 * caller's mount namespace, so in a child that entered a VE it is the VE's devpts).
 * The master is O_CLOEXEC; the slave (O_CLOEXEC, O_NOCTTY) is opened through
 * TIOCGPTPEER, never by path, so a devpts the VE controls cannot swap it.
 * *index (may be NULL) gets the pty's number N, as in /dev/pts/N.
 * Returns 0 or -errno. */
int ve_pty_open(const char *ptmx, int *master, int *slave, unsigned *index);

/* Make tty (a pty slave) the controlling terminal of a new session and the
 * caller's stdin, stdout and stderr. Returns 0 or -errno. */
int ve_pty_make_stdio(int tty);

#endif
