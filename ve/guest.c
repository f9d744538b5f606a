/* Guest configuration written by the host: see guest.h. */
#include "guest.h"

#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "cleanup.h"
#include "layer.h"
#include "net.h"

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

/* --- families ---------------------------------------------------------------- */

static const char *const families[] = { "debian", "ubuntu", NULL };

const char *ve_guest_family(const char *ostemplate)
{
        char name[160];
        char *dash;

        if (ostemplate == NULL || strlen(ostemplate) >= sizeof(name))
                return "default";
        snprintf(name, sizeof(name), "%s", ostemplate);
        for (;;) {
                for (unsigned i = 0; families[i]; i++)
                        if (strcmp(name, families[i]) == 0)
                                return "debian"; /* Ubuntu's ifupdown era reads the same files */
                dash = strrchr(name, '-');
                if (dash == NULL)
                        return "default";
                *dash = '\0';
        }
}

/* --- files ------------------------------------------------------------------- */

static int write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, buf, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

/* An O_PATH fd of directory dir (absolute in the VE) under root. */
static int open_dir(const char *root, const char *dir, struct ve_error *err)
{
        _cleanup_close_ int rootfd = -EBADF;
        int fd;

        rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return ve_error_errno(err, errno, "open VE root %s", root);
        fd = ve_openat2(rootfd, dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
        /* What the guest made of its own tree (a directory removed, or replaced by a
         * file or a link leading out of it) is a conflict with the guest, not a
         * missing resource of the API. */
        if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV))
                return ve_error_set(err, VE_ECONFLICT,
                                    "cannot use %s in the VE: %s (the guest removed or "
                                    "replaced it, or its template has none; ved follows no "
                                    "link there)",
                                    dir[0] ? dir : "/", strerror(errno));
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s in the VE", dir[0] ? dir : "/");
        return fd;
}

/* The directory holding path ("/etc/hosts": /etc) opened as open_dir() does, and
 * its last component ("hosts") in *name. */
static int open_parent(const char *root, const char *path, const char **name, struct ve_error *err)
{
        const char *slash = strrchr(path, '/');
        char dir[256];

        if (slash == NULL || slash[1] == '\0' || strlen(slash) > 200 ||
            (size_t)(slash - path) >= sizeof(dir))
                return ve_error_set(err, EINVAL, "bad guest path %s", path);
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
        *name = slash + 1;
        return open_dir(root, dir, err);
}

struct owner {
        mode_t mode;
        uid_t uid;
        gid_t gid;
};

/* The owner of files made anew: guest root (0:0) on a root that shows guest ids;
 * the VE root's host ids on one that shows those (ve_guest_apply_as()). */
static __thread uid_t new_uid;
static __thread gid_t new_gid;

/* Inside ve_guest_apply() with sync_once: replace_at() leaves the fsyncs to
 * the syncfs at its end, and says that it wrote. */
static __thread bool sync_deferred, wrote_deferred;

/* Inside ve_guest_apply() with skipped: where unusable files are named. */
static __thread char *skip_buf;
static __thread size_t skip_len;

/* A guest file that cannot be edited (read_at()'s refusal in err): named in
 * skip_buf and left alone when there is one, else the failure stands. */
static int skip_unusable(int ret, struct ve_error *err)
{
        size_t used;

        if (ret >= 0 || skip_buf == NULL || (err->code != VE_ECONFLICT && err->code != EFBIG))
                return ret;
        used = strlen(skip_buf);
        if (used + 1 < skip_len)
                snprintf(skip_buf + used, skip_len - used, "%s%s", used ? "; " : "", err->message);
        ve_error_clear(err);
        return 0;
}

/* dirfd is O_PATH, which fsync refuses (EBADF): the rename is made durable
 * through a readable fd of the same directory. */
static void sync_dir(int dirfd)
{
        _cleanup_close_ int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd >= 0)
                fsync(fd);
}

static int replace_at(int dirfd, const char *name, const char *path, const char *content,
                      size_t len, const struct owner *o, struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        char tmp[256];
        int ret;

        snprintf(tmp, sizeof(tmp), ".%s.ved-tmp", name);
        unlinkat(dirfd, tmp, 0);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return ve_error_errno(err, errno, "create %s in the VE", path);
        ret = write_all(fd, content, len);
        if (ret == 0 && (fchown(fd, o->uid, o->gid) < 0 || fchmod(fd, o->mode) < 0 ||
                         (!sync_deferred && fsync(fd) < 0)))
                ret = -errno;
        /* rename replaces whatever was there, a symlink included, never its target. */
        if (ret == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                ret = -errno;
        if (ret < 0) {
                unlinkat(dirfd, tmp, 0);
                return ve_error_errno(err, -ret, "write %s in the VE", path);
        }
        if (sync_deferred)
                wrote_deferred = true;
        else
                sync_dir(dirfd);
        return 0;
}

/* Read name in dirfd into a malloc'd string (empty when it is missing or a
 * symlink); *o gets its mode and owner when it is a file, else stays. */
static int read_at(int dirfd, const char *name, const char *path, char **out, struct owner *o,
                   struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t used = 0;
        ssize_t n;

        *out = NULL;
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 && (errno == ENOENT || errno == ELOOP))
                return (*out = strdup("")) ? 0 : ve_error_errno(err, ENOMEM, "read %s", path);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s in the VE", path);
        if (fstat(fd, &st) < 0)
                return ve_error_errno(err, errno, "stat %s in the VE", path);
        if (!S_ISREG(st.st_mode))
                return ve_error_set(err, VE_ECONFLICT, "%s in the VE is not a regular file", path);
        if (st.st_size > VE_GUEST_FILE_MAX)
                return ve_error_set(err, EFBIG, "%s in the VE is larger than %d bytes", path,
                                    VE_GUEST_FILE_MAX);
        buf = malloc((size_t)st.st_size + 1);
        if (buf == NULL)
                return ve_error_errno(err, ENOMEM, "read %s", path);
        while (used < (size_t)st.st_size &&
               (n = read(fd, buf + used, (size_t)st.st_size - used)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return ve_error_errno(err, errno, "read %s in the VE", path);
                used += (size_t)n;
        }
        buf[used] = '\0';
        o->mode = st.st_mode & 07777;
        o->uid = st.st_uid;
        o->gid = st.st_gid;
        *out = steal_ptr(&buf);
        return 0;
}

int ve_guest_write_file(const char *root, const char *path, const char *content, size_t len,
                        mode_t mode, struct ve_error *err)
{
        _cleanup_close_ int dirfd = -EBADF;
        _cleanup_free_ char *old = NULL;
        struct owner o = { mode, new_uid, new_gid }, was;
        const char *name;

        dirfd = open_parent(root, path, &name, err);
        if (dirfd < 0)
                return dirfd;
        /* Every start writes the guest's files from the record: one that says so
         * already is left alone (a write and its fsync cost a start ~1.3 ms). */
        if (len > 0 && read_at(dirfd, name, path, &old, &was, NULL) == 0 && strlen(old) == len &&
            memcmp(old, content, len) == 0)
                return 0;
        return replace_at(dirfd, name, path, content, len, &o, err);
}

int ve_guest_set_hostname(const char *root, const char *hostname, struct ve_error *err)
{
        char buf[300];
        int n = snprintf(buf, sizeof(buf), "%s\n", hostname);

        return ve_guest_write_file(root, "/etc/hostname", buf, (size_t)n, 0644, err);
}

/* --- marked blocks -------------------------------------------------------------- */

/* The start of the line holding exactly `line` (with its '\n'), or NULL. */
static const char *find_line(const char *text, const char *line)
{
        size_t len = strlen(line);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, line, len) == 0)
                        return p;
        return NULL;
}

char *ve_guest_edit_block(const char *text, const char *tag, const char *content, bool prepend)
{
        _cleanup_free_ char *begin = NULL, *end = NULL, *block = NULL, *rest = NULL;
        const char *e, *after;
        char *b, *out = NULL;
        size_t tlen = strlen(text), first = SIZE_MAX;
        bool nl;

        if (asprintf(&begin, "# BEGIN ved %s\n", tag) < 0 ||
            asprintf(&end, "# END ved %s\n", tag) < 0)
                return NULL;
        nl = content && *content && content[strlen(content) - 1] != '\n';
        if (asprintf(&block, "%s%s%s%s", content && *content ? begin : "", content ? content : "",
                     nl ? "\n" : "", content && *content ? end : "") < 0)
                return NULL;
        /* Every block of tag goes (a guest may have copied ours), and the new
         * one takes the first one's place. */
        rest = strdup(text);
        if (rest == NULL)
                return NULL;
        while ((b = (char *)find_line(rest, begin)) != NULL) {
                e = find_line(b, end);
                /* A block whose end the guest removed: only its first line is
                 * surely ours; what follows may be the customer's, and stays. */
                after = e ? e + strlen(end) : b + strlen(begin);
                if (first == SIZE_MAX)
                        first = (size_t)(b - rest);
                memmove(b, after, strlen(after) + 1);
        }
        if (first != SIZE_MAX) {
                if (asprintf(&out, "%.*s%s%s", (int)first, rest, block, rest + first) < 0)
                        return NULL;
                return out;
        }
        /* Nothing to remove: the file stays as it is, even without a last '\n'. */
        if (*block == '\0')
                return strdup(text);
        if (prepend) {
                if (asprintf(&out, "%s%s", block, text) < 0)
                        return NULL;
        } else if (asprintf(&out, "%s%s%s", text, tlen && text[tlen - 1] != '\n' ? "\n" : "",
                            block) < 0) {
                return NULL;
        }
        return out;
}

/* ve_guest_set_block(), with seed as the file's text when it is missing or
 * empty. */
static int set_block_seeded(const char *root, const char *path, const char *tag,
                            const char *content, mode_t mode, bool prepend, const char *seed,
                            struct ve_error *err)
{
        _cleanup_close_ int dirfd = -EBADF;
        _cleanup_free_ char *old = NULL, *new = NULL;
        struct owner o = { mode, new_uid, new_gid };
        const char *name;
        int ret;

        dirfd = open_parent(root, path, &name, err);
        if (dirfd < 0)
                return dirfd;
        ret = read_at(dirfd, name, path, &old, &o, err);
        if (ret < 0)
                return skip_unusable(ret, err);
        if (old[0] == '\0' && seed != NULL) {
                free(old);
                old = strdup(seed);
                if (old == NULL)
                        return ve_error_errno(err, ENOMEM, "edit %s", path);
        }
        new = ve_guest_edit_block(old, tag, content, prepend);
        if (new == NULL)
                return ve_error_errno(err, ENOMEM, "edit %s", path);
        if (strcmp(new, old) == 0)
                return 0;
        return replace_at(dirfd, name, path, new, strlen(new), &o, err);
}

int ve_guest_set_block(const char *root, const char *path, const char *tag, const char *content,
                       mode_t mode, bool prepend, struct ve_error *err)
{
        return set_block_seeded(root, path, tag, content, mode, prepend, NULL, err);
}

/* --- the parts -------------------------------------------------------------------- */

static int set_hosts(const char *root, const char *hostname, struct ve_error *err)
{
        char block[600];
        size_t short_len = strcspn(hostname, ".");

        if (hostname[short_len] == '.')
                snprintf(block, sizeof(block), "127.0.1.1\t%s %.*s\n", hostname, (int)short_len,
                         hostname);
        else
                snprintf(block, sizeof(block), "127.0.1.1\t%s\n", hostname);
        /* A guest without an /etc/hosts (or with an empty one) would lose
         * localhost, which its resolver finds there. */
        return set_block_seeded(root, "/etc/hosts", "hostname", block, 0644, false,
                                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                                err);
}

/* The host's own nameservers, for "inherit", appended to *buf. */
/* The nameservers of one resolv.conf, appended to out; *loopback counts the
 * ones on the host's loopback (127.0.0.0/8, ::1), which a VE, in a network
 * namespace of its own, cannot reach: left out. -errno when it cannot be read. */
static int resolv_nameservers(const char *path, FILE *out, unsigned *loopback)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[512], addr[256];
        unsigned n = 0;

        if (f == NULL)
                return -errno;
        while (fgets(line, sizeof(line), f) != NULL) {
                if (sscanf(line, " nameserver %255s", addr) != 1 ||
                    strspn(addr, "0123456789abcdefABCDEF.:") != strlen(addr))
                        continue;
                if (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0) {
                        (*loopback)++;
                        continue;
                }
                fprintf(out, "nameserver %s\n", addr);
                n++;
        }
        return (int)n;
}

/* The host's own nameservers, for "inherit". A host whose resolv.conf names only
 * a local stub (systemd-resolved's 127.0.0.53) gives the stub's upstream ones. */
static int host_nameservers(FILE *out, struct ve_error *err)
{
        unsigned loopback = 0;
        int n = resolv_nameservers("/etc/resolv.conf", out, &loopback);

        if (n < 0)
                return ve_error_errno(err, -n, "read the host's /etc/resolv.conf (inherit)");
        if (n == 0 && loopback > 0)
                resolv_nameservers("/run/systemd/resolve/resolv.conf", out, &loopback);
        return 0;
}

static int set_dns(const char *root, const struct ve_guest_config *c, struct ve_error *err)
{
        _cleanup_free_ char *block = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&block, &len);
        int ret = 0;

        if (f == NULL)
                return ve_error_errno(err, ENOMEM, "resolv.conf");
        for (size_t i = 0; ret == 0 && i < c->n_nameservers; i++) {
                if (strcmp(c->nameservers[i], "inherit") == 0)
                        ret = host_nameservers(f, err);
                else
                        fprintf(f, "nameserver %s\n", c->nameservers[i]);
        }
        if (c->n_searchdomains > 0) {
                fputs("search", f);
                for (size_t i = 0; i < c->n_searchdomains; i++)
                        fprintf(f, " %s", c->searchdomains[i]);
                fputc('\n', f);
        }
        fclose(f);
        if (ret < 0)
                return ret;
        return ve_guest_set_block(root, "/etc/resolv.conf", "dns", block, 0644, true, err);
}

/* Whether dir (absolute in the VE) is missing from root; anything else (there, or
 * made a link or a file by the guest) is for open_dir() to answer. */
static bool guest_lacks(const char *root, const char *dir)
{
        _cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int fd = -EBADF;

        if (rootfd < 0)
                return false;
        fd = ve_openat2(rootfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
        return fd < 0 && errno == ENOENT;
}

/* Debian's ifupdown: eth0 "manual", so `ifup -a` and networking.service leave the
 * addresses and routes the host gave it as they are. Without "auto" or
 * "allow-hotplug" ifupdown never touches eth0 at all. */
static int set_net_debian(const char *root, const struct ve_guest_config *c, struct ve_error *err)
{
        _cleanup_free_ char *block = NULL;
        const char *ifname;
        size_t len = 0;
        FILE *f;

        /* A guest without ifupdown (Ubuntu's netplan era, a minimal tree) has no
         * /etc/network, and nothing that would read the file. */
        if (guest_lacks(root, "/etc/network"))
                return 0;
        f = open_memstream(&block, &len);
        if (f == NULL)
                return ve_error_errno(err, ENOMEM, "interfaces");
        ifname = c->ifname != NULL && c->ifname[0] != '\0' ? c->ifname : VE_NET_VE_IFNAME;
        if (c->bridged)
                fprintf(f,
                        "# %s is configured by the host before the VE starts (bridged: its\n"
                        "# addresses on the bridge's subnet, and its routes);\n"
                        "# \"manual\" keeps ifupdown from changing it.\n",
                        ifname);
        else
                fprintf(f,
                        "# %s is configured by the host before the VE starts (routed: each\n"
                        "# address as /32 or /128, default routes via %s and %s);\n"
                        "# \"manual\" keeps ifupdown from changing it.\n",
                        ifname, VE_NET_GATEWAY4, VE_NET_GATEWAY6);
        if (c->n_addrs > 0) {
                fputs("# addresses:", f);
                for (size_t i = 0; i < c->n_addrs; i++)
                        fprintf(f, " %s%s", c->addrs[i],
                                c->bridged                 ? ""
                                : strchr(c->addrs[i], ':') ? "/128"
                                                           : "/32");
                fputc('\n', f);
        }
        fprintf(f, "iface %s inet manual\niface %s inet6 manual\n", ifname, ifname);
        fclose(f);
        return ve_guest_set_block(root, "/etc/network/interfaces", "network", block, 0644, false,
                                  err);
}

char *ve_guest_edit_shadow(const char *text, const char *user, const char *hash, long days)
{
        size_t ulen = strlen(user);
        const char *line = NULL, *eol, *rest;
        char *out;

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, user, ulen) == 0 && p[ulen] == ':') {
                        line = p;
                        break;
                }
        if (line == NULL) {
                errno = ENOENT;
                return NULL;
        }
        eol = line + strcspn(line, "\n");
        /* user:PASSWORD:LASTCHG:rest -> keep the rest from the fourth field on. */
        rest = line + ulen + 1;
        for (int field = 0; field < 2 && rest < eol; field++) {
                const char *colon = memchr(rest, ':', (size_t)(eol - rest));

                rest = colon ? colon + 1 : eol;
        }
        if (asprintf(&out, "%.*s%s:%s:%ld:%.*s%s", (int)(line - text), text, user, hash, days,
                     (int)(eol - rest), rest, eol) < 0) {
                errno = ENOMEM;
                return NULL;
        }
        return out;
}

/* /etc/shadow has no comments: the user's line is edited in place, the file keeps
 * its mode and owner (root:shadow 0640 on Debian). */
static int set_password(const char *root, const char *user, const char *hash, struct ve_error *err)
{
        _cleanup_close_ int dirfd = -EBADF;
        _cleanup_free_ char *old = NULL, *new = NULL;
        struct owner o = { 0640, new_uid, new_gid };
        int ret;

        dirfd = open_dir(root, "/etc", err);
        if (dirfd < 0)
                return dirfd;
        ret = read_at(dirfd, "shadow", "/etc/shadow", &old, &o, err);
        if (ret < 0)
                return ret;
        new = ve_guest_edit_shadow(old, user, hash, (long)(time(NULL) / 86400));
        if (new == NULL && errno == ENOENT)
                return ve_error_set(err, VE_EINVAL_INPUT, "the VE has no user '%s' in /etc/shadow",
                                    user);
        if (new == NULL)
                return ve_error_errno(err, ENOMEM, "edit /etc/shadow");
        ret = replace_at(dirfd, "shadow", "/etc/shadow", new, strlen(new), &o, err);
        explicit_bzero(new, strlen(new));
        return ret;
}

static int set_ssh_keys(const char *root, const char *keys, struct ve_error *err)
{
        _cleanup_close_ int dirfd = -EBADF;

        dirfd = open_dir(root, "/root", err);
        if (dirfd < 0)
                return dirfd;
        if (mkdirat(dirfd, ".ssh", 0700) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create /root/.ssh in the VE");
        return ve_guest_set_block(root, "/root/.ssh/authorized_keys", "ssh-key", keys, 0600, false,
                                  err);
}

static bool valid_machine_id(const char *s)
{
        return strspn(s, "0123456789abcdef") == 32 && (s[32] == '\0' || s[32] == '\n');
}

static int set_machine_id(const char *root, struct ve_error *err)
{
        _cleanup_close_ int dirfd = -EBADF;
        _cleanup_free_ char *old = NULL;
        struct owner o = { 0444, new_uid, new_gid };
        unsigned char id[16];
        char text[34];
        int ret;

        dirfd = open_dir(root, "/etc", err);
        if (dirfd < 0)
                return dirfd;
        ret = read_at(dirfd, "machine-id", "/etc/machine-id", &old, &o, err);
        if (ret < 0 || valid_machine_id(old))
                return ret;
        if (getrandom(id, sizeof(id), 0) != sizeof(id))
                return ve_error_errno(err, errno, "getrandom");
        for (int i = 0; i < 16; i++)
                snprintf(text + 2 * i, 3, "%02x", id[i]);
        text[32] = '\n';
        text[33] = '\0';
        o = (struct owner){ 0444, new_uid, new_gid };
        return replace_at(dirfd, "machine-id", "/etc/machine-id", text, 33, &o, err);
}

/* One syncfs for the file system of root: what replace_at() left unsynced. */
static int sync_fs_of(const char *root, struct ve_error *err)
{
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || syncfs(fd) < 0)
                return ve_error_errno(err, errno, "sync the files written in %s", root);
        return 0;
}

static int apply_files(const char *root, const struct ve_guest_config *c, struct ve_error *err)
{
        bool debian = c->family != NULL && strcmp(c->family, "debian") == 0;
        int ret = 0;

        /* First what the guest's own files can refuse (a user it does not have),
         * so that a refused change writes nothing. */
        if (c->user != NULL && c->password_hash != NULL)
                ret = set_password(root, c->user, c->password_hash, err);
        if (ret == 0 && c->ssh_keys != NULL)
                ret = set_ssh_keys(root, c->ssh_keys, err);
        if (ret == 0 && c->hostname != NULL) {
                ret = ve_guest_set_hostname(root, c->hostname, err);
                if (ret == 0)
                        ret = set_hosts(root, c->hostname, err);
        }
        if (ret == 0 && c->set_dns)
                ret = set_dns(root, c, err);
        if (ret == 0 && c->set_net && debian)
                ret = set_net_debian(root, c, err);
        if (ret == 0 && c->machine_id)
                ret = set_machine_id(root, err);
        return ret;
}

int ve_guest_apply(const char *root, const struct ve_guest_config *c, struct ve_error *err)
{
        struct ve_error serr = { 0 };
        int ret;

        sync_deferred = c->sync_once || c->no_sync;
        wrote_deferred = false;
        skip_buf = c->skipped_len > 0 ? c->skipped : NULL;
        skip_len = c->skipped_len;
        if (skip_buf != NULL)
                skip_buf[0] = '\0';
        ret = apply_files(root, c, err);
        skip_buf = NULL;
        sync_deferred = false;
        /* Even after a failure: what was written is made durable. */
        if (wrote_deferred && !c->no_sync && sync_fs_of(root, &serr) < 0 && ret == 0)
                ret = ve_error_set(err, serr.code, "%s", serr.message);
        ve_error_clear(&serr);
        if (ret < 0)
                return ve_error_prefix(err, "configure the guest");
        return 0;
}

/* --- secrets ------------------------------------------------------------------------ */

static bool valid_user(const char *s, size_t len)
{
        if (len == 0 || len > 32 || !(islower((unsigned char)s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
                    strchr("_.-", s[i]) == NULL)
                        return false;
        return true;
}

static void free_crypt_data(struct crypt_data **p)
{
        if (*p != NULL) {
                explicit_bzero(*p, sizeof(**p));
                free(*p);
        }
}

int ve_guest_apply_as(const char *root, const struct ve_guest_config *c, const struct ve_idmap *map,
                      struct ve_error *err)
{
        int ret;

        ret = ve_layer_as_ve_root(map, err);
        if (ret < 0)
                return ret;
        new_uid = map->uid_base;
        new_gid = map->gid_base;
        ret = ve_guest_apply(root, c, err);
        new_uid = 0;
        new_gid = 0;
        ve_layer_as_host();
        return ret;
}

int ve_guest_hash_password(const char *userpasswd, char **user, char **hash, struct ve_error *err)
{
        __attribute__((cleanup(free_crypt_data))) struct crypt_data *cd = NULL;
        const char *colon = userpasswd ? strchr(userpasswd, ':') : NULL;
        const char *pw;
        char salt[CRYPT_GENSALT_OUTPUT_SIZE];
        const char *h;

        *user = *hash = NULL;
        if (colon == NULL || !valid_user(userpasswd, (size_t)(colon - userpasswd)))
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "userpasswd must be USER:PASSWORD with a login name as USER");
        pw = colon + 1;
        if (*pw == '\0' || strlen(pw) > 256)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "userpasswd: the password must be 1 to 256 bytes");
        for (const char *p = pw; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "userpasswd: the password must not hold control "
                                            "characters");
        if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL &&
            crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
                return ve_error_errno(err, errno ? errno : EINVAL, "make a password salt");
        cd = calloc(1, sizeof(*cd));
        if (cd == NULL)
                return ve_error_errno(err, ENOMEM, "hash the password");
        h = crypt_rn(pw, salt, cd, sizeof(*cd));
        if (h == NULL || h[0] == '*')
                return ve_error_set(err, EINVAL, "crypt(3) could not hash the password");
        *user = strndup(userpasswd, (size_t)(colon - userpasswd));
        *hash = strdup(h);
        if (*user == NULL || *hash == NULL) {
                free(*user);
                free(*hash);
                *user = *hash = NULL;
                return ve_error_errno(err, ENOMEM, "hash the password");
        }
        return 0;
}

static bool key_type(const char *p, size_t len)
{
        static const char *const prefixes[] = { "ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-",
                                                NULL };

        for (unsigned i = 0; prefixes[i]; i++)
                if (len > strlen(prefixes[i]) && strncmp(p, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

/* A line holds a key when one of its words is a key type followed by a word. */
static bool line_has_key(const char *line, size_t len)
{
        const char *p = line, *end = line + len;

        while (p < end) {
                size_t w = strcspn(p, " \t");

                if (p + w > end)
                        w = (size_t)(end - p);
                if (key_type(p, w) && p + w < end)
                        return true;
                p += w;
                p += strspn(p, " \t");
        }
        return false;
}

int ve_guest_check_ssh_keys(const char *keys, struct ve_error *err)
{
        size_t len = keys ? strlen(keys) : 0;
        bool any = false;

        if (len == 0 || len > VE_GUEST_SSHKEY_MAX)
                return ve_error_set(err, VE_EINVAL_INPUT, "ssh_key must be 1 to %d bytes",
                                    VE_GUEST_SSHKEY_MAX);
        for (const char *p = keys; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                        return ve_error_set(err, VE_EINVAL_INPUT, "ssh_key must be printable text");
        for (const char *p = keys; *p;) {
                size_t n = strcspn(p, "\n");

                if (n > 0 && p[0] != '#') {
                        if (!line_has_key(p, n))
                                return ve_error_set(err, VE_EINVAL_INPUT,
                                                    "ssh_key: '%.40s' is not a public key line", p);
                        any = true;
                }
                p += n + (p[n] == '\n');
        }
        if (!any)
                return ve_error_set(err, VE_EINVAL_INPUT, "ssh_key holds no public key");
        /* "# END ved" inside would end the block early. */
        if (strstr(keys, "# BEGIN ved") || strstr(keys, "# END ved"))
                return ve_error_set(err, VE_EINVAL_INPUT, "ssh_key must not hold ved's markers");
        return 0;
}

/* --- live -------------------------------------------------------------------------- */

int ve_guest_sethostname_live(pid_t pid, const char *hostname, struct ve_error *err)
{
        _cleanup_close_ int ns = -EBADF;
        char path[64];
        size_t len = strlen(hostname);
        int status;
        pid_t child;

        snprintf(path, sizeof(path), "/proc/%d/ns/uts", (int)pid);
        ns = open(path, O_RDONLY | O_CLOEXEC);
        if (ns < 0)
                return ve_error_errno(err, errno, "open %s", path);
        /* A child of its own: setns would move the calling thread for good. */
        child = fork();
        if (child < 0)
                return ve_error_errno(err, errno, "fork");
        if (child == 0)
                _exit(setns(ns, CLONE_NEWUTS) == 0 && sethostname(hostname, len) == 0 ? 0 : errno);
        while (waitpid(child, &status, 0) < 0)
                if (errno != EINTR)
                        return ve_error_errno(err, errno, "wait for the hostname child");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return ve_error_errno(err, WIFEXITED(status) ? WEXITSTATUS(status) : EIO,
                                      "set the hostname in the VE's UTS namespace");
        return 0;
}
