/* Running a template recipe: see template_build.h. */
#include "ve/template_build.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ve/cleanup.h"
#include "ve/parse.h"

#define LOG_TAIL 1500

const char *ve_template_host_arch(void)
{
        static char arch[sizeof(((struct utsname *)0)->machine)];
        struct utsname u;

        if (arch[0] == '\0' && uname(&u) == 0)
                memcpy(arch, u.machine, sizeof(arch));
        return arch;
}

static bool plain_word(const char *s)
{
        if (*s == '\0')
                return false;
        for (; *s; s++)
                if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s))
                        return false;
        return true;
}

static bool plain_release(const char *s)
{
        if (*s == '\0')
                return true;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '.')
                        return false;
        return true;
}

int ve_template_recipe_find(const char *recipes_dir, const char *name,
                            struct ve_template_recipe *out, struct ve_error *err)
{
        struct ve_template_ident id;
        const char *arch = ve_template_host_arch();
        struct stat st;
        int n;

        memset(out, 0, sizeof(*out));
        if (ve_check_template_name(name, err) < 0)
                return -err->code;
        ve_template_name_parse(name, &id);
        /* The distro names a directory and the release is an argument: both plain. */
        if (!plain_word(id.distro) || !plain_release(id.release) || id.variant[0] != '\0')
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "cannot build '%s': name a distribution and release, such as "
                                    "debian-12",
                                    name);
        if (id.arch[0] != '\0' && strcmp(id.arch, arch) != 0)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "cannot build '%s' on this %s host: only %s templates", name,
                                    arch, arch);
        snprintf(out->distro, sizeof(out->distro), "%s", id.distro);
        snprintf(out->release, sizeof(out->release), "%s", id.release);
        snprintf(out->arch, sizeof(out->arch), "%s", arch);
        if (id.release[0] != '\0')
                n = snprintf(out->name, sizeof(out->name), "%s-%s-%s", id.distro, id.release, arch);
        else
                n = snprintf(out->name, sizeof(out->name), "%s", id.distro);
        if (n < 0 || (size_t)n >= sizeof(out->name))
                return ve_error_set(err, VE_EINVAL_INPUT, "template name '%s' is too long", name);
        n = snprintf(out->recipe, sizeof(out->recipe), "%s/%s/build", recipes_dir, id.distro);
        if (n < 0 || (size_t)n >= sizeof(out->recipe))
                return ve_error_set(err, ENAMETOOLONG, "recipe path too long");
        if (stat(out->recipe, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
                return ve_error_set(err, VE_ENOTFOUND, "no recipe builds '%s' (looked for %s)",
                                    id.distro, out->recipe);
        return 0;
}

/* The last LOG_TAIL bytes of the log, for the error message. */
static void log_tail(const char *path, char *buf, size_t len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        off_t size;
        ssize_t n;

        buf[0] = '\0';
        if (fd < 0)
                return;
        size = lseek(fd, 0, SEEK_END);
        if (size > (off_t)(len - 1))
                lseek(fd, size - (off_t)(len - 1), SEEK_SET);
        else
                lseek(fd, 0, SEEK_SET);
        n = read(fd, buf, len - 1);
        buf[n > 0 ? n : 0] = '\0';
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = '\0';
}

/* Only async-signal-safe calls here: the daemon has threads. */
static void exec_recipe(const struct ve_template_recipe *r, const char *out, char *tmpdir,
                        int logfd, pid_t daemon)
{
        char *argv[] = { (char *)r->recipe, (char *)out, r->release[0] ? (char *)r->release : NULL,
                         NULL };
        char *envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", tmpdir, NULL };
        int devnull = open("/dev/null", O_RDONLY);
        sigset_t none;

        if (devnull >= 0)
                dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        close_range(3, ~0U, 0);
        setsid();
        /* A daemon killed meanwhile takes the recipe with it, which cleans up
         * after itself on SIGTERM (its trap): the restarted daemon rolls the
         * operation back and finds no build still writing. The signal comes when
         * the forking thread ends: a libuv worker, which lives as long as the
         * daemon. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != daemon)
                _exit(127);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(r->recipe, argv, envp);
        _exit(127);
}

static int run(const struct ve_template_recipe *r, const char *out, const char *cache,
               const char *log, struct ve_error *err)
{
        _cleanup_close_ int logfd = -EBADF;
        char tail[LOG_TAIL], tmpdir[PATH_MAX + 8];
        pid_t pid, daemon = getpid();
        int status;

        logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (logfd < 0)
                return ve_error_errno(err, errno, "create %s", log);
        snprintf(tmpdir, sizeof(tmpdir), "TMPDIR=%s", cache);
        pid = fork();
        if (pid < 0)
                return ve_error_errno(err, errno, "fork the recipe %s", r->recipe);
        if (pid == 0)
                exec_recipe(r, out, tmpdir, logfd, daemon);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return ve_error_errno(err, errno, "wait for the recipe %s", r->recipe);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        log_tail(log, tail, sizeof(tail));
        return ve_error_set(err, EIO, "recipe %s %s %d; the end of %s:\n%s", r->recipe,
                            WIFEXITED(status) ? "exited with status" : "was killed by signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), log, tail);
}

static int read_metadata(const struct ve_template_recipe *r, const char *path, char sha256[65],
                         struct ve_error *err)
{
        json_t *meta;
        json_error_t jerr;
        const char *name, *sum;
        int ret = 0;

        sha256[0] = '\0';
        meta = json_load_file(path, 0, &jerr);
        if (meta == NULL)
                return access(path, F_OK) == 0
                           ? ve_error_set(err, EIO, "recipe metadata %s: %s", path, jerr.text)
                           : 0;
        name = json_string_value(json_object_get(meta, "name"));
        sum = json_string_value(json_object_get(meta, "sha256"));
        if (name == NULL || strcmp(name, r->name) != 0)
                ret = ve_error_set(err, EIO, "the recipe built '%s', not '%s'", name ? name : "",
                                   r->name);
        else if (sum != NULL && strlen(sum) == 64 && strspn(sum, "0123456789abcdef") == 64)
                memcpy(sha256, sum, 65);
        json_decref(meta);
        return ret;
}

int ve_template_recipe_run(const struct ve_template_recipe *r, const char *cache_dir, char *tarball,
                           size_t tarball_len, char sha256[65], struct ve_error *err)
{
        char meta[PATH_MAX], log[PATH_MAX];
        int ret;

        if (mkdir(cache_dir, 0700) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create %s", cache_dir);
        snprintf(tarball, tarball_len, "%s/%s.tar.zst", cache_dir, r->name);
        snprintf(meta, sizeof(meta), "%s.json", tarball);
        snprintf(log, sizeof(log), "%s/%s.log", cache_dir, r->name);
        unlink(meta);
        ret = run(r, tarball, cache_dir, log, err);
        if (ret == 0)
                ret = read_metadata(r, meta, sha256, err);
        if (ret < 0)
                return ve_error_prefix(err, "build template %s", r->name);
        return 0;
}
