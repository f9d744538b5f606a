/* Fuzz harness: a hostile template tarball, through ve_template_import().
 *
 * Each input is written to a file and imported with small caps (1 MiB of data,
 * 64 entries). No golden image is made: ve_image_mkfs() is wrapped (link option
 * --wrap) to fail at once, so what runs is the reading and checking of the
 * tarball and its extraction into the staging tree, the parts that meet hostile
 * bytes. On every input:
 *
 * - nothing is written outside the templates directory: a canary file and an
 *   empty directory beside it stay as they were (the corpus aims entries at
 *   them through "..", absolute paths, symlinks and hardlinks);
 * - the import fails (the image is never made) with a message, and leaves
 *   nothing in the templates directory: no staging tree, no image;
 * - a tarball the import accepted (its checked_cb ran) breaks none of the
 *   import's rules as this harness reads them itself with libarchive: no
 *   absolute path, no ".." component, no device node or socket, no entry
 *   below an earlier symlink entry, no hardlink leaving the tree, within both
 *   caps; and the staging tree it left holds no device node.
 *
 * A broken rule aborts. Built with libFuzzer (-DVED_FUZZ=ON, clang) it fuzzes;
 * otherwise tests/fuzz/driver.c replays tests/fuzz/corpus/fuzz_tarball. Runs as
 * root (the import chroots its extraction thread), in $TMPDIR or /tmp. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "ve/error.h"
#include "ve/template.h"

#define MAX_SIZE    (1024 * 1024)
#define MAX_ENTRIES 64
#define CANARY      "canary: must stay as it is\n"

int __wrap_ve_image_mkfs(const char *img, uint64_t size, uint64_t inodes, const char *src_dir,
                         struct ve_error *err);

static char base[256], templates[300], outside[300], canary[300], input[300];
static bool checked;

int __wrap_ve_image_mkfs(const char *img, uint64_t size, uint64_t inodes, const char *src_dir,
                         struct ve_error *err)
{
        (void)img;
        (void)size;
        (void)inodes;
        (void)src_dir;
        return ve_error_set(err, ECANCELED, "fuzzing: no image is made");
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static void remove_base(void)
{
        nftw(base, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const void *data, size_t size)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        require(fd >= 0, "create %s: %s", path, strerror(errno));
        require(write(fd, data, size) == (ssize_t)size, "write %s: %s", path, strerror(errno));
        close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *tmp = getenv("TMPDIR");

        (void)argc;
        (void)argv;
        snprintf(base, sizeof(base), "%s/ved-fuzz-tarball-XXXXXX", tmp ? tmp : "/tmp");
        require(mkdtemp(base) != NULL, "mkdtemp %s: %s", base, strerror(errno));
        atexit(remove_base);
        snprintf(templates, sizeof(templates), "%s/t", base);
        snprintf(outside, sizeof(outside), "%s/outside", base);
        snprintf(canary, sizeof(canary), "%s/canary", base);
        snprintf(input, sizeof(input), "%s/input", base);
        require(mkdir(templates, 0700) == 0, "mkdir %s", templates);
        require(mkdir(outside, 0755) == 0, "mkdir %s", outside);
        write_file(canary, CANARY, strlen(CANARY));
        return 0;
}

static unsigned count_entries(const char *dir)
{
        unsigned n = 0;
        struct dirent *d;
        DIR *dh = opendir(dir);

        require(dh != NULL, "open %s: %s", dir, strerror(errno));
        while ((d = readdir(dh)) != NULL)
                if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
                        n++;
        closedir(dh);
        return n;
}

/* What lies beside the templates directory is as it was. */
static void check_outside(void)
{
        char buf[sizeof(CANARY) + 16];
        struct stat st;
        ssize_t n;
        int fd;

        require(count_entries(base) == 4, "something was written beside the templates directory");
        require(count_entries(outside) == 0, "something was written in %s", outside);
        require(lstat(canary, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
                    (st.st_mode & 07777) == 0600,
                "the canary file was replaced, linked or changed mode");
        fd = open(canary, O_RDONLY | O_CLOEXEC);
        require(fd >= 0, "open the canary");
        n = read(fd, buf, sizeof(buf));
        close(fd);
        require(n == (ssize_t)strlen(CANARY) && memcmp(buf, CANARY, (size_t)n) == 0,
                "the canary file was written");
}

static int no_device_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)flag;
        (void)ftw;
        require(!S_ISCHR(st->st_mode) && !S_ISBLK(st->st_mode) && !S_ISSOCK(st->st_mode),
                "an accepted tarball left a device node or socket: %s", path);
        return 0;
}

/* Called by the import once the whole tarball was read and accepted: its
 * staging tree is complete, under <templates>/.staging-*. */
static void checked_cb(void *opaque)
{
        (void)opaque;
        checked = true;
        require(nftw(templates, no_device_cb, 16, FTW_PHYS) == 0, "walk the staging tree");
}

/* ---- the oracle: the import's rules, read again independently ----
 *
 * skip_dot_slash() and has_dotdot() repeat what ve/template.c does, on purpose:
 * an oracle that called the code it checks would agree with its mistakes. */

static const char *skip_dot_slash(const char *p)
{
        while (p[0] == '.' && p[1] == '/') {
                p += 2;
                while (*p == '/')
                        p++;
        }
        return p;
}

static bool has_dotdot(const char *p)
{
        while (*p) {
                size_t n = strcspn(p, "/");

                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return true;
                p += n;
                while (*p == '/')
                        p++;
        }
        return false;
}

/* Paths compared component by component, ignoring repeated and trailing '/':
 * 0 if dir is no prefix of path, 1 if they are the same, 2 if path is below. */
static int relation(const char *path, const char *dir)
{
        while (*dir == '/')
                dir++;
        while (*path == '/')
                path++;
        while (*dir) {
                size_t n = strcspn(dir, "/"), m = strcspn(path, "/");

                if (n != m || memcmp(dir, path, n) != 0)
                        return 0;
                dir += n;
                path += m;
                while (*dir == '/')
                        dir++;
                while (*path == '/')
                        path++;
        }
        return *path == '\0' ? 1 : 2;
}

struct seen {
        char **links; /* symlink entries so far */
        size_t n;
};

static void seen_free(struct seen *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->links[i]);
        free(s->links);
}

static void check_accepted(const uint8_t *data, size_t size)
{
        struct archive *a = archive_read_new();
        struct archive_entry *e;
        struct seen links = { 0 };
        uint64_t declared = 0, entries = 0;
        int r;

        archive_read_support_format_tar(a);
        archive_read_support_format_gnutar(a);
        archive_read_support_filter_gzip(a);
        archive_read_support_filter_bzip2(a);
        archive_read_support_filter_xz(a);
        archive_read_support_filter_lzma(a);
        archive_read_support_filter_zstd(a);
        require(archive_read_open_memory(a, data, size) == ARCHIVE_OK,
                "an accepted tarball does not open here: %s", archive_error_string(a));
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                const char *raw = archive_entry_pathname(e), *path, *hl;
                mode_t type = archive_entry_filetype(e);

                require(raw != NULL, "an accepted entry has no name");
                entries++;
                path = skip_dot_slash(raw);
                if (path[0] == '\0' || strcmp(path, ".") == 0)
                        continue;
                /* An entry replaces a symlink entry of its own name. */
                for (size_t i = 0; i < links.n; i++)
                        if (relation(path, links.links[i]) == 1) {
                                free(links.links[i]);
                                links.links[i--] = links.links[--links.n];
                        }
                require(path[0] != '/', "accepted an absolute path: %s", raw);
                require(!has_dotdot(path), "accepted a '..' component: %s", raw);
                for (size_t i = 0; i < links.n; i++)
                        require(relation(path, links.links[i]) != 2,
                                "accepted '%s' below the symlink entry '%s'", raw, links.links[i]);
                hl = archive_entry_hardlink(e);
                if (hl != NULL) {
                        hl = skip_dot_slash(hl);
                        require(hl[0] != '/' && !has_dotdot(hl),
                                "accepted a hardlink leaving the tree: %s -> %s", raw, hl);
                        for (size_t i = 0; i < links.n; i++)
                                require(relation(hl, links.links[i]) != 2,
                                        "accepted a hardlink through the symlink '%s': %s",
                                        links.links[i], hl);
                } else {
                        require(type != AE_IFCHR && type != AE_IFBLK && type != AE_IFSOCK,
                                "accepted a device node or socket: %s", raw);
                        if (type == AE_IFREG)
                                declared += (uint64_t)archive_entry_size(e);
                }
                if (type == AE_IFLNK && hl == NULL) {
                        links.links = realloc(links.links, (links.n + 1) * sizeof(char *));
                        require(links.links != NULL, "out of memory");
                        links.links[links.n++] = strdup(path);
                }
        }
        require(entries <= MAX_ENTRIES, "accepted %llu entries, past the cap of %d",
                (unsigned long long)entries, MAX_ENTRIES);
        require(declared <= MAX_SIZE, "accepted %llu bytes, past the cap of %d",
                (unsigned long long)declared, MAX_SIZE);
        seen_free(&links);
        archive_read_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ve_template_import req = { .templates_dir = templates,
                                          .source = input,
                                          .name = "fuzz",
                                          .max_size = MAX_SIZE,
                                          .max_entries = MAX_ENTRIES,
                                          .checked_cb = checked_cb };
        struct ve_template_info info;
        struct ve_error err = { 0 };
        int ret;

        write_file(input, data, size);
        checked = false;
        ret = ve_template_import(&req, &info, &err);
        require(ret < 0, "the import succeeded without an image");
        require(err.message != NULL && err.message[0] != '\0', "a failure without a message");
        require(!checked || err.code == ECANCELED,
                "a checked tarball failed for another reason than the missing image: %s",
                err.message);
        require(count_entries(templates) == 0, "a failed import left something behind");
        check_outside();
        if (checked)
                check_accepted(data, size);
        ve_error_clear(&err);
        return 0;
}
