/* Pseudo-terminals: allocation and making one the stdio of a process. */
#include "ve/console.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int ve_pty_open(const char *ptmx, int *master, int *slave, unsigned *index)
{
        unsigned n = 0;
        int unlock = 0, m, s;

        m = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0)
                return -errno;
        if (ioctl(m, TIOCSPTLCK, &unlock) < 0 || ioctl(m, TIOCGPTN, &n) < 0) {
                int saved = errno;

                close(m);
                return -saved;
        }
        s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s < 0) {
                int saved = errno;

                close(m);
                return -saved;
        }
        if (index != NULL)
                *index = n;
        *master = m;
        *slave = s;
        return 0;
}

int ve_pty_make_stdio(int tty)
{
        if (setsid() < 0)
                return -errno;
        if (ioctl(tty, TIOCSCTTY, 0) < 0)
                return -errno;
        for (int fd = 0; fd < 3; fd++)
                if (dup2(tty, fd) < 0)
                        return -errno;
        return 0;
}
