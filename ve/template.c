#include "template.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "image.h"
#include "mount.h"
#include "parse.h"

#define READ_CHUNK (64 * 1024)
#define MAX_DEPTH  128 /* path components per entry; ve_rmtree_at() manages 256 */
#define MIB        (1024ULL * 1024)

static inline void cleanup_mdp(EVP_MD_CTX **p)
{
        EVP_MD_CTX_free(*p);
}
static inline void cleanup_archive_readp(struct archive **a)
{
        if (*a != NULL)
                archive_read_free(*a);
}
static inline void cleanup_archive_writep(struct archive **a)
{
        if (*a != NULL)
                archive_write_free(*a);
}
#define _cleanup_md_     __attribute__((cleanup(cleanup_mdp)))
#define _cleanup_aread_  __attribute__((cleanup(cleanup_archive_readp)))
#define _cleanup_awrite_ __attribute__((cleanup(cleanup_archive_writep)))

/* One import in progress, shared with the extraction thread. */
struct extract {
        const struct ve_template_import *req;
        struct ve_error *err;
        int src_fd;
        int root_fd; /* the staging tree, <staging>/root */
        EVP_MD_CTX *md;
        uint64_t max_size, max_entries;
        uint64_t declared, bytes, entries, alloc;
        uint64_t read, source_size; /* compressed bytes, for progress */
        int ret;
        char buf[READ_CHUNK];
};

/* ---- names ---------------------------------------------------------------- */

static const char *const arches[] = { "x86_64",  "amd64",   "i386",   "i686",  "x86",
                                      "aarch64", "arm64",   "armhf",  "armel", "ppc64le",
                                      "s390x",   "riscv64", "noarch", NULL };

static bool is_arch(const char *s)
{
        int i;

        for (i = 0; arches[i]; i++)
                if (strcmp(s, arches[i]) == 0)
                        return true;
        return false;
}

static void copy_field(char *dst, size_t len, const char *src, size_t n)
{
        if (n >= len)
                n = len - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
}

int ve_template_name_parse(const char *name, struct ve_template_ident *out)
{
        const char *p = name, *dash;
        char part[32];

        memset(out, 0, sizeof(*out));
        if (name == NULL || *name == '\0')
                return -EINVAL;
        dash = strchrnul(p, '-');
        copy_field(out->distro, sizeof(out->distro), p, (size_t)(dash - p));
        p = *dash ? dash + 1 : dash;
        if (isdigit((unsigned char)*p)) {
                dash = strchrnul(p, '-');
                copy_field(out->release, sizeof(out->release), p, (size_t)(dash - p));
                p = *dash ? dash + 1 : dash;
        }
        dash = strchrnul(p, '-');
        copy_field(part, sizeof(part), p, (size_t)(dash - p));
        if (is_arch(part)) {
                snprintf(out->arch, sizeof(out->arch), "%s", part);
                p = *dash ? dash + 1 : dash;
        }
        snprintf(out->variant, sizeof(out->variant), "%s", p);
        return 0;
}

/* The names distributions give one architecture: x86_64 is Debian's amd64. */
static const char *const arch_aliases[][2] = {
        { "x86_64", "amd64" }, { "aarch64", "arm64" }, { "i686", "i386" }, { NULL, NULL }
};

int ve_template_name_candidates(const char *name, const char *host_arch,
                                char out[][VE_TEMPLATE_NAME_MAX + 1], size_t max)
{
        const char *arches_to_try[2] = { host_arch, NULL };
        struct ve_template_ident id;
        const char *rest;
        size_t n = 0;
        int i;

        if (ve_template_name_parse(name, &id) < 0 || id.arch[0] != '\0')
                return 0;
        /* The arch goes after distro[-release], from the name itself (the
         * ident's fields are cut at their size). */
        rest = strchrnul(name, '-');
        if (*rest == '-' && isdigit((unsigned char)rest[1]))
                rest = strchrnul(rest + 1, '-');
        for (i = 0; arch_aliases[i][0]; i++)
                if (strcmp(host_arch, arch_aliases[i][0]) == 0)
                        arches_to_try[1] = arch_aliases[i][1];
        for (i = 0; i < 2 && arches_to_try[i] && n < max; i++) {
                int len = snprintf(out[n], VE_TEMPLATE_NAME_MAX + 1, "%.*s-%s%s",
                                   (int)(rest - name), name, arches_to_try[i], rest);

                if (len > 0 && len <= VE_TEMPLATE_NAME_MAX)
                        n++;
        }
        return (int)n;
}

static const char *const tar_suffixes[] = {
        ".tgz", ".txz", ".tzst", ".tbz2", ".tbz", ".tar", NULL
};

/* "/x/debian-12-x86_64.tar.gz" -> "debian-12-x86_64". */
static int name_from_source(const char *source, char *name, size_t len, struct ve_error *err)
{
        const char *base = strrchr(source, '/');
        char *cut;
        int i;

        base = base ? base + 1 : source;
        snprintf(name, len, "%s", base);
        cut = strstr(name, ".tar.");
        if (cut != NULL)
                *cut = '\0';
        for (i = 0; tar_suffixes[i]; i++) {
                size_t n = strlen(name), s = strlen(tar_suffixes[i]);

                if (n > s && strcmp(name + n - s, tar_suffixes[i]) == 0)
                        name[n - s] = '\0';
        }
        if (ve_check_template_name(name, err) < 0)
                return ve_error_prefix(err, "template name from file %s", base);
        return 0;
}

/* ---- checksum --------------------------------------------------------------- */

static void hex_digest(EVP_MD_CTX *md, char hex[65])
{
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0, i;

        EVP_DigestFinal_ex(md, digest, &n);
        for (i = 0; i < n && i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        hex[64] = '\0';
}

static int new_sha256(EVP_MD_CTX **md, struct ve_error *err)
{
        *md = EVP_MD_CTX_new();
        if (*md == NULL || EVP_DigestInit_ex(*md, EVP_sha256(), NULL) != 1)
                return ve_error_set(err, ENOMEM, "initialise SHA-256");
        return 0;
}

/* Hash the rest of fd from its current offset into md. */
static int hash_rest(int fd, EVP_MD_CTX *md, char *buf, size_t len)
{
        ssize_t n;

        while ((n = read(fd, buf, len)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                EVP_DigestUpdate(md, buf, (size_t)n);
        }
        return 0;
}

static bool valid_hex64(const char *s)
{
        int i;

        for (i = 0; i < 64; i++)
                if (!isxdigit((unsigned char)s[i]))
                        return false;
        return s[64] == '\0';
}

/* When a checksum is expected, verify the file before parsing a byte of it. */
static int verify_before(struct extract *x)
{
        _cleanup_md_ EVP_MD_CTX *md = NULL;
        char hex[65];
        int ret;

        if (x->req->sha256 == NULL)
                return 0;
        ret = new_sha256(&md, x->err);
        if (ret < 0)
                return ret;
        ret = hash_rest(x->src_fd, md, x->buf, sizeof(x->buf));
        if (ret < 0)
                return ve_error_errno(x->err, ret, "read %s", x->req->source);
        hex_digest(md, hex);
        if (strcasecmp(hex, x->req->sha256) != 0)
                return ve_error_set(x->err, VE_EINVAL_INPUT,
                                    "the tarball's SHA-256 is %s, not the %s given", hex,
                                    x->req->sha256);
        if (lseek(x->src_fd, 0, SEEK_SET) < 0)
                return ve_error_errno(x->err, errno, "rewind %s", x->req->source);
        return 0;
}

/* ---- entry checks ------------------------------------------------------------- */

static const char *strip_dot_slash(const char *p)
{
        while (p[0] == '.' && p[1] == '/') {
                p += 2;
                while (*p == '/')
                        p++;
        }
        return p;
}

/* A relative path inside the tree: not absolute, no "..", not too deep. */
static const char *check_inside(const char *path)
{
        const char *p = path;
        int depth = 0;

        if (path[0] == '/')
                return "absolute path";
        while (*p) {
                size_t n = strcspn(p, "/");

                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return "'..' component";
                if (++depth > MAX_DEPTH)
                        return "path too deep";
                p += n;
                while (*p == '/')
                        p++;
        }
        return NULL;
}

/* Does resolving the directory part of path inside the tree meet a symlink?
 * Returns 1 if so, 0 if not (or if it does not exist yet). */
static int through_symlink(int root_fd, const char *path)
{
        struct open_how how = {
                .flags = O_PATH | O_CLOEXEC,
                .resolve =
                    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        char dir[PATH_MAX];
        char *slash;
        int fd;

        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash == NULL)
                return 0;
        *slash = '\0';
        fd = (int)syscall(SYS_openat2, root_fd, dir, &how, sizeof(how));
        if (fd >= 0) {
                close(fd);
                return 0;
        }
        return errno == ELOOP || errno == EXDEV ? 1 : 0;
}

static int refuse(struct extract *x, const char *path, const char *why)
{
        size_t len = strlen(path), n = len > 256 ? 256 : len;

        /* A name is shown whole up to 256 bytes: enough to find it, and a
         * hostile one does not make the answer huge. Cut between characters,
         * so that a UTF-8 name stays valid UTF-8. */
        while (n > 0 && n < len && ((unsigned char)path[n] & 0xc0) == 0x80)
                n--;
        return ve_error_set(x->err, VE_EINVAL_INPUT, "entry '%.*s%s': %s refused", (int)n, path,
                            n < len ? "..." : "", why);
}

static int check_type(struct extract *x, struct archive_entry *e, const char *path)
{
        switch (archive_entry_filetype(e)) {
        case AE_IFREG:
        case AE_IFDIR:
        case AE_IFLNK:
        case AE_IFIFO:
                return 0;
        case AE_IFCHR:
        case AE_IFBLK:
                return refuse(x, path, "device node (a VE's /dev is made at start)");
        case AE_IFSOCK:
                return refuse(x, path, "socket");
        default:
                return refuse(x, path, "unknown file type");
        }
}

static int check_hardlink(struct extract *x, struct archive_entry *e, const char *path)
{
        const char *target = archive_entry_hardlink(e), *why;
        char msg[PATH_MAX + 64];

        if (target == NULL)
                return 0;
        target = strip_dot_slash(target);
        why = check_inside(target);
        if (why == NULL && through_symlink(x->root_fd, target))
                why = "path through a symlink";
        if (why == NULL) {
                archive_entry_copy_hardlink(e, target);
                return 0;
        }
        snprintf(msg, sizeof(msg), "hardlink to '%s' (%s)", target, why);
        return refuse(x, path, msg);
}

static int check_size(struct extract *x, struct archive_entry *e, const char *path)
{
        uint64_t size = (uint64_t)archive_entry_size(e);
        char limit[16];

        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != NULL)
                return 0;
        x->declared += size;
        x->alloc += (size + 4095) & ~4095ULL;
        if (x->declared <= x->max_size)
                return 0;
        ve_format_size(x->max_size, limit, sizeof(limit));
        return ve_error_set(x->err, VE_ETOOLARGE,
                            "entry '%s' (%llu bytes) takes the template past its %s size limit",
                            path, (unsigned long long)size, limit);
}

/* Keep user.* and security.capability; drop trusted.*, security.selinux and
 * the rest, which mean something to the host rather than to the guest. */
static void filter_xattrs(struct archive_entry *e)
{
        struct archive_entry *keep = archive_entry_new();
        const char *name;
        const void *value;
        size_t size;

        if (keep == NULL || archive_entry_xattr_reset(e) == 0) {
                archive_entry_free(keep);
                return;
        }
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
                if (strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0)
                        archive_entry_xattr_add_entry(keep, name, value, size);
        archive_entry_xattr_clear(e);
        archive_entry_xattr_reset(keep);
        while (archive_entry_xattr_next(keep, &name, &value, &size) == ARCHIVE_OK)
                archive_entry_xattr_add_entry(e, name, value, size);
        archive_entry_free(keep);
}

/* All checks on one entry before it is written. Returns 1 to skip it (the
 * tree's root, which is ours), 0 to write it, or a negative error. */
static int check_entry(struct extract *x, struct archive_entry *e)
{
        const char *raw = archive_entry_pathname(e), *why;
        char path[PATH_MAX];
        int ret;

        if (raw == NULL)
                return ve_error_set(x->err, VE_EINVAL_INPUT, "entry %llu: name cannot be read",
                                    (unsigned long long)x->entries);
        if (++x->entries > x->max_entries)
                return ve_error_set(x->err, VE_ETOOLARGE, "more than %llu entries in %s",
                                    (unsigned long long)x->max_entries, x->req->source);
        /* Cut to fit, the name would be another one than the tarball's. */
        if (snprintf(path, sizeof(path), "%s", strip_dot_slash(raw)) >= (int)sizeof(path))
                return refuse(x, raw, "name longer than PATH_MAX");
        if (path[0] == '\0' || strcmp(path, ".") == 0 || strcmp(path, "./") == 0)
                return 1;
        why = check_inside(path);
        if (why != NULL)
                return refuse(x, raw, why);
        if (through_symlink(x->root_fd, path))
                return refuse(x, raw, "write through a symlink");
        /* A hardlink's type is its target's, which passed these checks. */
        if (archive_entry_hardlink(e) != NULL)
                ret = check_hardlink(x, e, raw);
        else
                ret = check_type(x, e, raw);
        if (ret == 0)
                ret = check_size(x, e, raw);
        if (ret < 0)
                return ret;
        if (archive_entry_filetype(e) == AE_IFDIR ||
            (archive_entry_filetype(e) == AE_IFLNK && strlen(archive_entry_symlink(e) ?: "") > 59))
                x->alloc += 4096;
        archive_entry_copy_pathname(e, path);
        filter_xattrs(e);
        return 0;
}

/* ---- extraction --------------------------------------------------------------- */

static la_ssize_t read_cb(struct archive *a, void *data, const void **buf)
{
        struct extract *x = data;
        ssize_t n;

        do
                n = read(x->src_fd, x->buf, sizeof(x->buf));
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                archive_set_error(a, errno, "read %s", x->req->source);
                return -1;
        }
        EVP_DigestUpdate(x->md, x->buf, (size_t)n);
        x->read += (uint64_t)n;
        if (x->req->progress_cb != NULL)
                x->req->progress_cb(x->read, x->source_size, x->req->opaque);
        *buf = x->buf;
        return n;
}

static int archive_fail(struct extract *x, struct archive *a, const char *what, const char *path)
{
        const char *msg = archive_error_string(a);
        int code = archive_errno(a) > 0 ? archive_errno(a) : VE_EINVAL_INPUT;

        /* Bytes that are no archive, or a broken one, are the tarball's fault:
         * libarchive says so with EILSEQ (its ARCHIVE_ERRNO_FILE_FORMAT on Linux)
         * or EINVAL. */
        if (code == EILSEQ || code == EINVAL)
                code = VE_EINVAL_INPUT;

        if (path != NULL)
                return ve_error_set(x->err, code, "%s '%s': %s", what, path, msg ? msg : "failed");
        return ve_error_set(x->err, code, "%s: %s", what, msg ? msg : "failed");
}

static int copy_data(struct extract *x, struct archive *in, struct archive *out, const char *path)
{
        const void *buf;
        size_t size;
        la_int64_t offset;
        int r;

        while ((r = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK) {
                x->bytes += size;
                if (x->bytes > x->max_size)
                        return ve_error_set(x->err, VE_ETOOLARGE,
                                            "entry '%s': data past the template size limit", path);
                if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_OK)
                        return archive_fail(x, out, "write", path);
        }
        if (r != ARCHIVE_EOF)
                return archive_fail(x, in, "read", path);
        return 0;
}

static int extract_entry(struct extract *x, struct archive *in, struct archive *out,
                         struct archive_entry *e)
{
        int ret;

        ret = check_entry(x, e);
        if (ret != 0)
                return ret > 0 ? 0 : ret;
        if (archive_write_header(out, e) < ARCHIVE_WARN)
                return archive_fail(x, out, "extract", archive_entry_pathname(e));
        if (archive_entry_size(e) > 0 && archive_entry_hardlink(e) == NULL) {
                ret = copy_data(x, in, out, archive_entry_pathname(e));
                if (ret < 0)
                        return ret;
        }
        if (archive_write_finish_entry(out) < ARCHIVE_WARN)
                return archive_fail(x, out, "finish", archive_entry_pathname(e));
        return 0;
}

static struct archive *open_reader(struct extract *x)
{
        struct archive *a = archive_read_new();

        if (a == NULL)
                return NULL;
        /* Tar only, compressed or not: no zip, iso9660 or cpio parsers for
         * untrusted bytes, and no filters that fork external programs. */
        archive_read_support_format_tar(a);
        archive_read_support_format_gnutar(a);
        archive_read_support_filter_gzip(a);
        archive_read_support_filter_bzip2(a);
        archive_read_support_filter_xz(a);
        archive_read_support_filter_lzma(a);
        archive_read_support_filter_zstd(a);
        if (archive_read_open(a, x, NULL, read_cb, NULL) != ARCHIVE_OK) {
                /* The source is the daemon's upload file: not a name to show. */
                x->ret = archive_fail(x, a,
                                      "not a tar archive (plain, or compressed with gzip, "
                                      "bzip2, xz, lzma or zstd)",
                                      NULL);
                archive_read_free(a);
                return NULL;
        }
        return a;
}

static struct archive *open_writer(void)
{
        struct archive *a = archive_write_disk_new();

        if (a == NULL)
                return NULL;
        /* No ARCHIVE_EXTRACT_FFLAGS: an immutable file would outlive the
         * clean-up. No name lookups: owners are the guest's numeric ids. */
        archive_write_disk_set_options(
            a, ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                   ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM |
                   ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR);
        return a;
}

static int extract_all(struct extract *x)
{
        _cleanup_aread_ struct archive *in = NULL;
        _cleanup_awrite_ struct archive *out = NULL;
        struct archive_entry *e;
        int r, ret;

        in = open_reader(x);
        if (in == NULL)
                return x->ret < 0 ? x->ret : ve_error_set(x->err, ENOMEM, "libarchive");
        out = open_writer();
        if (out == NULL)
                return ve_error_set(x->err, ENOMEM, "libarchive");
        while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                ret = extract_entry(x, in, out, e);
                if (ret < 0)
                        return ret;
        }
        if (r != ARCHIVE_EOF)
                return archive_fail(x, in, "read", x->req->source);
        if (archive_write_close(out) != ARCHIVE_OK)
                return archive_fail(x, out, "extract", x->req->source);
        return 0;
}

/* The extraction thread: its own root and cwd (the staging tree), so
 * nothing it writes can land outside it, and the process's cwd is left alone. */
static void *extract_thread(void *data)
{
        struct extract *x = data;

        if (unshare(CLONE_FS) < 0) {
                x->ret = ve_error_errno(x->err, errno, "unshare file system context");
                return NULL;
        }
        if (fchdir(x->root_fd) < 0) {
                x->ret = ve_error_errno(x->err, errno, "enter staging directory");
                return NULL;
        }
        /* Without CAP_SYS_CHROOT (tests as a user), libarchive's checks and
         * ours still hold; chroot is the second wall. */
        if (chroot(".") < 0 && errno != EPERM) {
                x->ret = ve_error_errno(x->err, errno, "chroot to staging directory");
                return NULL;
        }
        x->ret = extract_all(x);
        return NULL;
}

static int run_extraction(struct extract *x)
{
        pthread_t thread;
        int ret;

        ret = pthread_create(&thread, NULL, extract_thread, x);
        if (ret != 0)
                return ve_error_errno(x->err, ret, "start extraction thread");
        pthread_join(thread, NULL);
        return x->ret;
}

/* Extract and hash in one pass (so the bytes hashed are the bytes extracted),
 * then hash whatever follows the end of the archive. */
static int extract_and_hash(struct extract *x, char sha[65])
{
        _cleanup_md_ EVP_MD_CTX *md = NULL;
        int ret;

        ret = new_sha256(&md, x->err);
        if (ret < 0)
                return ret;
        x->md = md;
        ret = run_extraction(x);
        if (ret < 0)
                return ret;
        ret = hash_rest(x->src_fd, md, x->buf, sizeof(x->buf));
        if (ret < 0)
                return ve_error_errno(x->err, ret, "read %s", x->req->source);
        hex_digest(md, sha);
        if (x->req->sha256 != NULL && strcasecmp(sha, x->req->sha256) != 0)
                return ve_error_set(x->err, VE_EINVAL_INPUT, "%s changed while it was read",
                                    x->req->source);
        return 0;
}

/* ---- image ---------------------------------------------------------------------- */

/* Room for the data (blocks), ext4's metadata and journal, and a fifth more
 * for the VE to grow into before anyone resizes it; at least one inode per
 * VE_IMAGE_BYTES_PER_INODE bytes for every entry. */
static uint64_t image_size_for(const struct extract *x)
{
        uint64_t size = x->alloc + x->alloc / 5 + 32 * MIB;
        uint64_t for_inodes = (x->entries + 1024) * VE_IMAGE_BYTES_PER_INODE;

        if (size < for_inodes + for_inodes / 10)
                size = for_inodes + for_inodes / 10;
        return (size + MIB - 1) & ~(MIB - 1);
}

static int fsync_dir(const char *dir, struct ve_error *err)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
                return ve_error_errno(err, errno, "sync %s", dir);
        return 0;
}

static int commit_image(const char *dir, const char *tmp, const char *final, const char *name,
                        struct ve_error *err)
{
        _cleanup_close_ int fd = open(tmp, O_RDONLY | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
                return ve_error_errno(err, errno, "sync %s", tmp);
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
                if (errno == EEXIST)
                        return ve_error_set(err, VE_ECONFLICT, "template %s already exists", name);
                return ve_error_errno(err, errno, "rename %s to %s", tmp, final);
        }
        return fsync_dir(dir, err);
}

static int build_image(const char *dir, const char *name, const char *tree, uint64_t size,
                       struct ve_error *err)
{
        char tmp[PATH_MAX], final[PATH_MAX];
        int fd, ret;

        snprintf(final, sizeof(final), "%s/%s.img", dir, name);
        snprintf(tmp, sizeof(tmp), "%s/.%s.img.tmp-XXXXXX", dir, name);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "create %s", tmp);
        close(fd);
        ret = ve_image_mkfs(tmp, size, 0, tree, err);
        /* The estimate is generous, but a tree of many tiny files can still
         * beat it: one more try with twice the room. */
        if (ret < 0)
                ret = ve_image_mkfs(tmp, size * 2, 0, tree, err);
        if (ret == 0)
                ret = commit_image(dir, tmp, final, name, err);
        if (ret < 0)
                unlink(tmp);
        return ret;
}

/* ---- import ---------------------------------------------------------------------- */

int ve_template_image_path(const char *dir, const char *name, char *path, size_t len,
                           struct ve_error *err)
{
        int n = snprintf(path, len, "%s/%s.img", dir, name);

        if (n < 0 || (size_t)n >= len)
                return ve_error_set(err, ENAMETOOLONG, "path too long: %s/%s.img", dir, name);
        return 0;
}

static int check_request(const struct ve_template_import *req, char *name, size_t len,
                         struct ve_error *err)
{
        char img[PATH_MAX];
        int ret;

        if (req->templates_dir == NULL || req->source == NULL)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "template import needs a directory "
                                    "and a source file");
        if (req->sha256 != NULL && !valid_hex64(req->sha256))
                return ve_error_set(err, VE_EINVAL_INPUT, "sha256 '%s' is not 64 hex digits",
                                    req->sha256);
        if (req->name != NULL) {
                ret = ve_check_template_name(req->name, err);
                snprintf(name, len, "%s", req->name);
        } else {
                ret = name_from_source(req->source, name, len, err);
        }
        if (ret < 0)
                return ret;
        if (mkdir(req->templates_dir, 0700) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create %s", req->templates_dir);
        ret = ve_template_image_path(req->templates_dir, name, img, sizeof(img), err);
        if (ret < 0)
                return ret;
        if (access(img, F_OK) == 0)
                return ve_error_set(err, VE_ECONFLICT, "template %s already exists", name);
        return 0;
}

/* <dir>/.staging-<name>-XXXXXX (0700, so that no host user reaches the
 * guest's setuid files), holding root/ (0755), the tree. Returns root's fd. */
static int make_staging(const char *dir, const char *name, char *staging, size_t len,
                        struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        int root;

        snprintf(staging, len, "%s/.staging-%s-XXXXXX", dir, name);
        if (mkdtemp(staging) == NULL) {
                root = ve_error_errno(err, errno, "create staging directory in %s", dir);
                staging[0] = '\0';
                return root;
        }
        fd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", staging);
        if (mkdirat(fd, "root", 0755) < 0 || fchmodat(fd, "root", 0755, 0) < 0)
                return ve_error_errno(err, errno, "create %s/root", staging);
        root = openat(fd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root < 0)
                return ve_error_errno(err, errno, "open %s/root", staging);
        return root;
}

static int open_source(const char *source, uint64_t *size, struct ve_error *err)
{
        struct stat st;
        int fd;

        fd = open(source, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", source);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return ve_error_set(err, VE_EINVAL_INPUT, "%s is not a regular file", source);
        }
        *size = (uint64_t)st.st_size;
        return fd;
}

static void fill_info(struct ve_template_info *info, const char *name, const struct extract *x,
                      const char *img, const char *sha)
{
        struct ve_template_ident id;
        struct stat st;

        memset(info, 0, sizeof(*info));
        ve_template_name_parse(name, &id);
        snprintf(info->name, sizeof(info->name), "%s", name);
        snprintf(info->distro, sizeof(info->distro), "%s", id.distro);
        snprintf(info->release, sizeof(info->release), "%s", id.release);
        snprintf(info->arch, sizeof(info->arch), "%s", id.arch);
        snprintf(info->sha256, sizeof(info->sha256), "%s", sha);
        info->tree_bytes = x->bytes;
        info->files = x->entries;
        if (stat(img, &st) == 0)
                info->image_bytes = (uint64_t)st.st_size;
}

/* Everything between the open source fd and the finished image. */
static int import_into(struct extract *x, const char *name, const char *staging,
                       struct ve_template_info *info)
{
        char sha[65], tree[PATH_MAX], img[PATH_MAX];
        int ret;

        ret = verify_before(x);
        if (ret == 0)
                ret = extract_and_hash(x, sha);
        if (ret < 0)
                return ret;
        if (x->req->checked_cb != NULL)
                x->req->checked_cb(x->req->opaque);
        snprintf(tree, sizeof(tree), "%s/root", staging);
        ret = build_image(x->req->templates_dir, name, tree, image_size_for(x), x->err);
        if (ret < 0)
                return ret;
        ve_template_image_path(x->req->templates_dir, name, img, sizeof(img), NULL);
        fill_info(info, name, x, img, sha);
        return 0;
}

int ve_template_import(const struct ve_template_import *req, struct ve_template_info *info,
                       struct ve_error *err)
{
        _cleanup_free_ struct extract *x = calloc(1, sizeof(*x));
        _cleanup_close_ int src_fd = -EBADF;
        _cleanup_close_ int root_fd = -EBADF;
        char name[VE_TEMPLATE_NAME_MAX + 1], staging[PATH_MAX] = "";
        uint64_t source_size = 0;
        int ret;

        if (x == NULL)
                return ve_error_errno(err, ENOMEM, "import template");
        ret = check_request(req, name, sizeof(name), err);
        if (ret < 0)
                return ve_error_prefix(err, "import template");
        src_fd = open_source(req->source, &source_size, err);
        if (src_fd < 0)
                return ve_error_prefix(err, "import template %s", name);
        root_fd = make_staging(req->templates_dir, name, staging, sizeof(staging), err);
        if (root_fd >= 0) {
                *x = (struct extract){ .req = req,
                                       .err = err,
                                       .src_fd = src_fd,
                                       .root_fd = root_fd,
                                       .source_size = source_size,
                                       .max_size = req->max_size ?: VE_TEMPLATE_MAX_SIZE,
                                       .max_entries = req->max_entries ?: VE_TEMPLATE_MAX_ENTRIES };
                ret = import_into(x, name, staging, info);
        } else {
                ret = root_fd;
        }
        /* The image is the template now; a staging tree that cannot be
         * deleted (it never happens short of I/O errors) is for
         * ve_template_cleanup() to retry, not a reason to fail the import. */
        if (staging[0] != '\0')
                ve_rmtree(staging, NULL);
        if (ret < 0)
                return ve_error_prefix(err, "import template %s", name);
        return 0;
}

int ve_template_remove(const char *templates_dir, const char *name, struct ve_error *err)
{
        char img[PATH_MAX], sizes[PATH_MAX + 16];
        int ret;

        ret = ve_check_template_name(name, err);
        if (ret == 0)
                ret = ve_template_image_path(templates_dir, name, img, sizeof(img), err);
        if (ret < 0)
                return ve_error_prefix(err, "remove template");
        if (unlink(img) < 0) {
                if (errno == ENOENT)
                        return ve_error_set(err, VE_ENOTFOUND, "template %s not found", name);
                return ve_error_errno(err, errno, "remove template %s", name);
        }
        /* Its grown clones kept for creates (image.c): "<name>.sizes". */
        snprintf(sizes, sizeof(sizes), "%s/%s.sizes", templates_dir, name);
        if (access(sizes, F_OK) == 0 && ve_rmtree(sizes, err) < 0)
                return ve_error_prefix(err, "remove template %s", name);
        return fsync_dir(templates_dir, err);
}

static bool is_leftover(const char *n)
{
        return strncmp(n, ".staging-", 9) == 0 || strncmp(n, ".upload-", 8) == 0 ||
               (n[0] == '.' && strstr(n, ".img.tmp-") != NULL);
}

int ve_template_cleanup(const char *templates_dir, struct ve_error *err)
{
        _cleanup_closedir_ DIR *d = opendir(templates_dir);
        struct dirent *de;
        int ret;

        if (d == NULL)
                return errno == ENOENT ? 0 : ve_error_errno(err, errno, "open %s", templates_dir);
        while ((de = readdir(d)) != NULL) {
                if (!is_leftover(de->d_name))
                        continue;
                ret = ve_rmtree_at(dirfd(d), de->d_name, err);
                if (ret < 0)
                        return ve_error_prefix(err, "clean up %s", templates_dir);
        }
        return 0;
}
