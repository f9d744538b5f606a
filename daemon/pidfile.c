#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ve/start.h"

pid_t ved_pidfile_fresh(const char *pidfile)
{
        char buf[32] = "";
        FILE *f = fopen(pidfile, "re");
        long pid = 0;

        if (f != NULL) {
                if (fgets(buf, sizeof(buf), f) != NULL)
                        pid = strtol(buf, NULL, 10);
                fclose(f);
        }
        return pid <= 1 || ve_proc_exited((pid_t)pid) ? 0 : (pid_t)pid;
}

pid_t ved_pidfile_alive(const char *pidfile, const char *comm)
{
        char buf[32] = "", path[64];
        pid_t pid = ved_pidfile_fresh(pidfile);
        FILE *f;

        if (pid == 0)
                return 0;
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        f = fopen(path, "re");
        if (f == NULL)
                return 0;
        if (fgets(buf, sizeof(buf), f) == NULL)
                buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\n")] = '\0';
        return strcmp(buf, comm) == 0 ? pid : 0;
}

/* The server itself: nothing of the daemon's but its log and pass_fd. */
__attribute__((noreturn)) static void exec_server(const char *path, char *const argv[],
                                                  const char *logfile, int pass_fd)
{
        sigset_t none;
        int fd;

        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
                dup2(fd, STDIN_FILENO);
        fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
        }
        if (pass_fd >= 0 && dup2(pass_fd, 3) < 0)
                _exit(127);
        close_range(pass_fd >= 0 ? 4 : 3, ~0U, 0);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(path, argv);
        _exit(127);
}

int ved_spawn_detached(const char *path, char *const argv[], const char *logfile, int pass_fd,
                       const char *pidfile)
{
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                pid_t server;
                char buf[32];
                int fd, n;

                setsid();
                server = fork();
                if (server == 0)
                        exec_server(path, argv, logfile, pass_fd);
                if (server < 0)
                        _exit(1);
                if (pidfile == NULL)
                        _exit(0);
                fd = open(pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                n = snprintf(buf, sizeof(buf), "%d\n", (int)server);
                _exit(fd >= 0 && write(fd, buf, (size_t)n) == n ? 0 : 1);
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}
