/* Storage half of the VE runtime: templates, images, loop devices, mounts.
 * Needs root (loop devices, mount); skipped otherwise. Everything it makes
 * lives under one temporary directory that the group teardown unmounts and
 * deletes, whatever failed. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "unit_fs.h"

#include "ve/disk.h"
#include "ve/error.h"
#include "ve/image.h"
#include "ve/loop.h"
#include "ve/mount.h"
#include "ve/template.h"

#define MIB (1024ULL * 1024)

static char base[PATH_MAX]; /* the test's temporary directory */
static char tpl_dir[PATH_MAX];

static void skip_unless_root(void)
{
        if (geteuid() != 0)
                skip();
}

/* The source tree, for templates/busybox/build: $VED_SOURCE_DIR or from __FILE__. */
static void source_dir(char *out)
{
        const char *env = getenv("VED_SOURCE_DIR");
        char file[PATH_MAX];

        if (env != NULL) {
                pathf(out, "%s", env);
                return;
        }
        if (realpath(__FILE__, file) == NULL)
                pathf(file, "%s", __FILE__);
        pathf(out, "%s", dirname(dirname(dirname(file))));
}

static int group_setup(void **state)
{
        (void)state;
        if (geteuid() != 0)
                return 0;
        pathf(base, "/tmp/ved-test-storage-XXXXXX");
        if (mkdtemp(base) == NULL)
                return -1;
        pathf(tpl_dir, "%s/templates", base);
        return mkdir(tpl_dir, 0700);
}

static int group_teardown(void **state)
{
        struct ve_error err = { 0 };

        (void)state;
        if (base[0] == '\0')
                return 0;
        umount_all_under(base);
        if (ve_rmtree(base, &err) < 0) {
                fprintf(stderr, "cleanup: %s\n", err.message);
                ve_error_clear(&err);
                return -1;
        }
        return 0;
}

/* Does any loop device still use a file whose path starts with prefix? */
static int loops_referencing(const char *prefix)
{
        char path[PATH_MAX], backing[PATH_MAX];
        struct dirent *de;
        int n = 0;
        DIR *d = opendir("/sys/block");

        assert_non_null(d);
        while ((de = readdir(d)) != NULL) {
                FILE *f;

                if (strncmp(de->d_name, "loop", 4) != 0)
                        continue;
                pathf(path, "/sys/block/%s/loop/backing_file", de->d_name);
                f = fopen(path, "re");
                if (f == NULL)
                        continue;
                if (fgets(backing, sizeof(backing), f) != NULL &&
                    strncmp(backing, prefix, strlen(prefix)) == 0)
                        n++;
                fclose(f);
        }
        closedir(d);
        return n;
}

/* Leftovers of imports in tpl_dir: staging trees and temporary images. */
static int leftovers(void)
{
        struct dirent *de;
        int n = 0;
        DIR *d = opendir(tpl_dir);

        assert_non_null(d);
        while ((de = readdir(d)) != NULL)
                if (strncmp(de->d_name, ".staging-", 10) == 0 || strstr(de->d_name, ".tmp") != NULL)
                        n++;
        closedir(d);
        return n;
}

static int exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

/* ---- name parsing -------------------------------------------------------------- */

static void test_name_parse(void **state)
{
        struct ve_template_ident id;

        (void)state;
        assert_int_equal(ve_template_name_parse("debian-12-x86_64", &id), 0);
        assert_string_equal(id.distro, "debian");
        assert_string_equal(id.release, "12");
        assert_string_equal(id.arch, "x86_64");
        assert_string_equal(id.variant, "");
        assert_int_equal(ve_template_name_parse("centos-7-x86_64-minimal", &id), 0);
        assert_string_equal(id.distro, "centos");
        assert_string_equal(id.variant, "minimal");
        assert_int_equal(ve_template_name_parse("ubuntu-22.04", &id), 0);
        assert_string_equal(id.release, "22.04");
        assert_string_equal(id.arch, "");
        assert_int_equal(ve_template_name_parse("busybox", &id), 0);
        assert_string_equal(id.distro, "busybox");
        assert_string_equal(id.release, "");
        assert_string_equal(id.arch, "");
        assert_int_equal(ve_template_name_parse("", &id), -EINVAL);
}

static void test_name_candidates(void **state)
{
        char full[2][VE_TEMPLATE_NAME_MAX + 1];
        char longname[VE_TEMPLATE_NAME_MAX + 1];

        (void)state;
        assert_int_equal(ve_template_name_candidates("centos-7", "x86_64", full, 2), 2);
        assert_string_equal(full[0], "centos-7-x86_64");
        assert_string_equal(full[1], "centos-7-amd64");
        assert_int_equal(ve_template_name_candidates("centos-7-minimal", "aarch64", full, 2), 2);
        assert_string_equal(full[0], "centos-7-aarch64-minimal");
        assert_string_equal(full[1], "centos-7-arm64-minimal");
        assert_int_equal(ve_template_name_candidates("ubuntu-22.04", "riscv64", full, 2), 1);
        assert_string_equal(full[0], "ubuntu-22.04-riscv64");
        assert_int_equal(ve_template_name_candidates("busybox", "x86_64", full, 1), 1);
        assert_string_equal(full[0], "busybox-x86_64");
        /* A name that has an arch stands for itself only. */
        assert_int_equal(ve_template_name_candidates("debian-12-amd64", "x86_64", full, 2), 0);
        assert_int_equal(ve_template_name_candidates("", "x86_64", full, 2), 0);
        /* Built from the name itself, however long its parts. */
        memset(longname, 'a', 70);
        strcpy(longname + 70, "-7");
        assert_int_equal(ve_template_name_candidates(longname, "x86_64", full, 1), 1);
        assert_int_equal(strlen(full[0]), 70 + strlen("-7-x86_64"));
        assert_string_equal(full[0] + 70, "-7-x86_64");
        /* A full name that would be too long is not a candidate. */
        memset(longname, 'a', VE_TEMPLATE_NAME_MAX - 3);
        longname[VE_TEMPLATE_NAME_MAX - 3] = '\0';
        assert_int_equal(ve_template_name_candidates(longname, "x86_64", full, 2), 0);
}

/* ---- busybox: import, clone, mount, grow, unmount ---------------------------------- */

static void build_busybox(char *tarball)
{
        char src[PATH_MAX], cmd[3 * PATH_MAX];

        source_dir(src);
        pathf(tarball, "%s/busybox.tar.gz", base);
        snprintf(cmd, sizeof(cmd), "'%s/templates/busybox/build' '%s'", src, tarball);
        assert_int_equal(system(cmd), 0);
}

/* ve_template_import's checked_cb: counts its calls. */
static void count_checked(void *opaque)
{
        ++*(int *)opaque;
}

static void import_busybox(char *golden)
{
        int checked = 0;
        struct ve_template_import req = { .templates_dir = tpl_dir,
                                          .checked_cb = count_checked,
                                          .opaque = &checked };
        struct ve_template_info info;
        struct ve_error err = { 0 };
        char tarball[PATH_MAX];
        int ret;

        build_busybox(tarball);
        req.source = tarball;
        ret = ve_template_import(&req, &info, &err);
        if (ret < 0)
                fail_msg("import: %s", err.message);
        assert_int_equal(checked, 1);
        assert_string_equal(info.name, "busybox");
        assert_string_equal(info.distro, "busybox");
        assert_int_equal(strlen(info.sha256), 64);
        assert_true(info.files > 250);
        assert_true(info.tree_bytes > 1000000);
        pathf(golden, "%s/busybox.img", tpl_dir);
        assert_true(exists(golden));
        assert_true(info.image_bytes > info.tree_bytes);
        assert_int_equal(leftovers(), 0);
        /* Again, with the right checksum: the name is taken. */
        req.sha256 = info.sha256;
        assert_int_equal(ve_template_import(&req, &info, &err), -VE_ECONFLICT);
        ve_error_clear(&err);
}

static void make_private(const char *golden, const char *ve, uint64_t size, uint64_t inodes,
                         char *img, char *mnt)
{
        struct ve_error err = { 0 };
        char dir[PATH_MAX];

        pathf(dir, "%s/%s", base, ve);
        assert_int_equal(mkdir(dir, 0700), 0);
        pathf(img, "%s/root.img", dir);
        pathf(mnt, "%s/root", dir);
        assert_int_equal(mkdir(mnt, 0755), 0);
        if (ve_private_create(golden, img, size, inodes, &err) < 0)
                fail_msg("create %s: %s", ve, err.message);
        assert_int_equal(ve_private_create(golden, img, size, inodes, &err), -EEXIST);
        ve_error_clear(&err);
}

static void check_guest_tree(const char *mnt)
{
        char path[PATH_MAX], link[64];
        struct stat st;
        ssize_t n;

        pathf(path, "%s/bin/busybox", mnt);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode) && (st.st_mode & 0111));
        assert_int_equal(st.st_uid, 0);
        pathf(path, "%s/sbin/init", mnt);
        n = readlink(path, link, sizeof(link) - 1);
        assert_true(n > 0);
        link[n] = '\0';
        assert_string_equal(link, "../bin/busybox");
        pathf(path, "%s/tmp", mnt);
        assert_int_equal(lstat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 01777);
        assert_int_equal(lstat(mnt, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0755);
}

static bool have_sys_resource(void)
{
        char line[256];
        unsigned long long eff = 0;
        FILE *f = fopen("/proc/self/status", "re");

        assert_non_null(f);
        while (fgets(line, sizeof(line), f) != NULL)
                if (sscanf(line, "CapEff: %llx", &eff) == 1)
                        break;
        fclose(f);
        return (eff >> 24) & 1; /* CAP_SYS_RESOURCE */
}

static void mount_and_grow(const char *img, const char *mnt)
{
        struct ve_disk_usage u;
        struct stat st;
        struct ve_error err = { 0 };
        char dev[64], found[64];

        if (ve_private_mount(img, mnt, dev, sizeof(dev), &err) < 0)
                fail_msg("mount: %s", err.message);
        assert_int_equal(ve_is_mounted(mnt), 1);
        assert_int_equal(ve_loop_find(img, found, sizeof(found), &err), 0);
        assert_string_equal(found, dev);
        check_guest_tree(mnt);
        if (ve_disk_limits_apply(mnt, 256 * MIB, 0, &err) < 0)
                fail_msg("limits: %s", err.message);
        assert_int_equal(ve_private_usage(mnt, &u, &err), 0);
        assert_int_equal(u.total_bytes, 256 * MIB);
        assert_true(u.used_bytes > 1000000 && u.used_bytes < u.total_bytes);
        /* Within the headroom, growing online needs no capability. */
        if (ve_disk_limits_apply(mnt, 384 * MIB, 0, &err) < 0)
                fail_msg("grow online: %s", err.message);
        assert_int_equal(ve_private_usage(mnt, &u, &err), 0);
        assert_int_equal(u.total_bytes, 384 * MIB);
        /* Beyond it, the file system itself must grow. */
        if (have_sys_resource()) {
                if (ve_private_resize(img, ve_disk_fs_size(256 * MIB) + 64 * MIB, true, &err) < 0)
                        fail_msg("grow online: %s", err.message);
                assert_int_equal(stat(img, &st), 0);
                assert_int_equal(st.st_size, ve_disk_fs_size(256 * MIB) + 64 * MIB);
        } else {
                /* Sandboxes without CAP_SYS_RESOURCE: the kernel refuses
                 * EXT4_IOC_RESIZE_FS; the error must say why, and leave the
                 * image as it was. */
                print_message("No CAP_SYS_RESOURCE: online grow checked for its refusal\n");
                assert_int_equal(
                    ve_private_resize(img, ve_disk_fs_size(256 * MIB) + 64 * MIB, true, &err),
                    -EPERM);
                assert_non_null(strstr(err.message, "CAP_SYS_RESOURCE"));
                assert_int_equal(stat(img, &st), 0);
                assert_int_equal(st.st_size, ve_disk_fs_size(256 * MIB));
        }
        /* ext4 cannot shrink while mounted. */
        assert_int_equal(ve_private_resize(img, 200 * MIB, true, &err), -VE_ECONFLICT);
        assert_non_null(strstr(err.message, "stop the VE"));
        /* Offline operations refuse an attached image. */
        assert_int_equal(ve_private_resize(img, 300 * MIB, false, &err), -EBUSY);
        ve_error_clear(&err);
        if (ve_private_umount(mnt, &err) < 0)
                fail_msg("umount: %s", err.message);
        assert_int_equal(ve_is_mounted(mnt), 0);
        assert_int_equal(ve_loop_find(img, found, sizeof(found), &err), -ENOENT);
}

static void shrink_offline(const char *img)
{
        struct ve_error err = { 0 };
        struct stat st;

        if (ve_private_resize(img, 200 * MIB, false, &err) < 0)
                fail_msg("shrink: %s", err.message);
        assert_int_equal(stat(img, &st), 0);
        assert_int_equal(st.st_size, 200 * MIB);
        assert_true(ve_private_resize(img, 1 * MIB, false, &err) < 0);
        assert_non_null(strstr(err.message, "in use"));
        ve_error_clear(&err);
}

static void check_inodes_image(const char *img, const char *mnt)
{
        struct ve_disk_usage u;
        struct ve_error err = { 0 };

        if (ve_private_mount(img, mnt, NULL, 0, &err) < 0)
                fail_msg("mount: %s", err.message);
        check_guest_tree(mnt);
        if (ve_disk_limits_apply(mnt, 128 * MIB, 20000, &err) < 0)
                fail_msg("limits: %s", err.message);
        assert_int_equal(ve_private_usage(mnt, &u, &err), 0);
        assert_true(u.inodes_total >= 20000 && u.inodes_total <= 22000);
        assert_int_equal(u.total_bytes, 128 * MIB);
        assert_int_equal(ve_private_umount(mnt, &err), 0);
}

/* The 16 bytes of the file system UUID in the superblock copy at off. */
static void read_uuid(const char *img, off_t off, unsigned char uuid[16])
{
        int fd = open(img, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(pread(fd, uuid, 16, off + 0x68), 16);
        close(fd);
}

/* s_overhead_clusters of the superblock copy at off. */
static uint32_t read_overhead(const char *img, off_t off)
{
        unsigned char b[4];
        int fd = open(img, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(pread(fd, b, 4, off + 0x248), 4);
        close(fd);
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* An image ved made or resized already holds, in its superblock and group 1's
 * backup, the overhead the kernel computes at mount (else every first mount
 * rewrites each backup): mounting it leaves the value as it was. */
static void check_overhead(const char *img, const char *mnt)
{
        struct ve_error err = { 0 };
        uint32_t before = read_overhead(img, 1024);

        assert_true(before > 0);
        assert_int_equal(read_overhead(img, 32768LL * 4096), before);
        if (ve_private_mount(img, mnt, NULL, 0, &err) < 0)
                fail_msg("mount: %s", err.message);
        assert_int_equal(ve_private_umount(mnt, &err), 0);
        assert_int_equal(read_overhead(img, 1024), before);
}

/* e2fsck -fn img: 0 when the file system is clean. */
static int fsck_clean(const char *img)
{
        char cmd[PATH_MAX + 64];

        pathf(cmd, "e2fsck -fn '%s' >/dev/null 2>&1", img);
        return system(cmd);
}

/* A second VE of a size made before is cloned from the grown copy kept for that
 * size; every clone has a UUID of its own, in each superblock copy, and passes
 * e2fsck. Removing the template removes the kept sizes. */
static void check_clones(const char *golden, const char *img1)
{
        char img3[PATH_MAX], mnt3[PATH_MAX], sized[PATH_MAX], sizes[PATH_MAX];
        unsigned char u_golden[16], u1[16], u3[16], u3_backup[16];
        struct ve_error err = { 0 };

        pathf(sizes, "%s/busybox.sizes", tpl_dir);
        pathf(sized, "%s/%llu.img", sizes, (unsigned long long)ve_disk_fs_size(256 * MIB));
        assert_true(exists(sized));
        make_private(golden, "103", 256 * MIB, 0, img3, mnt3);
        read_uuid(golden, 1024, u_golden);
        read_uuid(img1, 1024, u1);
        read_uuid(img3, 1024, u3);
        /* Group 1's backup (4 KiB blocks, 32768 blocks per group). */
        read_uuid(img3, 32768LL * 4096, u3_backup);
        assert_memory_not_equal(u1, u3, 16);
        assert_memory_not_equal(u_golden, u3, 16);
        assert_memory_equal(u3, u3_backup, 16);
        assert_int_equal(fsck_clean(img3), 0);
        assert_int_equal(fsck_clean(img1), 0);
        check_overhead(img3, mnt3);
        if (ve_template_remove(tpl_dir, "busybox", &err) < 0)
                fail_msg("remove: %s", err.message);
        assert_false(exists(sizes));
        assert_false(exists(golden));
}

static void test_busybox_lifecycle(void **state)
{
        char golden[PATH_MAX], img1[PATH_MAX], mnt1[PATH_MAX], img2[PATH_MAX], mnt2[PATH_MAX];

        (void)state;
        skip_unless_root();
        import_busybox(golden);
        make_private(golden, "101", 256 * MIB, 0, img1, mnt1);
        make_private(golden, "102", 128 * MIB, 20000, img2, mnt2);
        check_clones(golden, img1);
        mount_and_grow(img1, mnt1);
        shrink_offline(img1);
        check_overhead(img1, mnt1);
        check_overhead(img2, mnt2);
        check_inodes_image(img2, mnt2);
        assert_int_equal(loops_referencing(base), 0);
}

/* ---- hostile tarballs ------------------------------------------------------------ */

struct tar_entry {
        unsigned type; /* AE_IF*; 0 ends the list */
        const char *path;
        const char *target; /* symlink or hardlink target */
        size_t size;
};

static void write_tar(const char *file, const struct tar_entry *entries)
{
        struct archive *a = archive_write_new();
        static char data[64 * 1024];
        const struct tar_entry *t;

        memset(data, 'x', sizeof(data));
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        /* Names as the bytes given, whatever the locale: no conversion. */
        assert_int_equal(archive_write_set_format_option(a, "pax", "hdrcharset", "BINARY"),
                         ARCHIVE_OK);
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        assert_int_equal(archive_write_open_filename(a, file), ARCHIVE_OK);
        for (t = entries; t->type != 0; t++) {
                struct archive_entry *e = archive_entry_new();
                size_t left = t->size;

                archive_entry_set_pathname(e, t->path);
                archive_entry_set_filetype(e, t->type == 1 ? AE_IFREG : t->type);
                archive_entry_set_perm(e, t->type == AE_IFDIR ? 0755 : 0644);
                if (t->type == AE_IFLNK)
                        archive_entry_set_symlink(e, t->target);
                if (t->type == 1) /* hardlink */
                        archive_entry_set_hardlink(e, t->target);
                if (t->type == AE_IFCHR)
                        archive_entry_set_rdev(e, makedev(1, 3));
                if (t->type == AE_IFREG)
                        archive_entry_set_size(e, (la_int64_t)t->size);
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                while (t->type == AE_IFREG && left > 0) {
                        size_t n = left < sizeof(data) ? left : sizeof(data);

                        assert_int_equal(archive_write_data(a, data, n), (la_ssize_t)n);
                        left -= n;
                }
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
}

/* Import entries as template name, which must fail with a message holding
 * expect, leaving no staging directory and no image behind. */
static void import_must_fail(const char *name, const struct tar_entry *entries, uint64_t max_size,
                             const char *expect)
{
        int checked = 0;
        struct ve_template_import req = { .templates_dir = tpl_dir,
                                          .name = name,
                                          .max_size = max_size,
                                          .checked_cb = count_checked,
                                          .opaque = &checked };
        struct ve_template_info info;
        struct ve_error err = { 0 };
        char tar[PATH_MAX], img[PATH_MAX];
        int ret;

        pathf(tar, "%s/%s.tar.gz", base, name);
        write_tar(tar, entries);
        req.source = tar;
        ret = ve_template_import(&req, &info, &err);
        /* Refused as bad input (the API's 400 or 413), before it was accepted. */
        assert_true(ret == -VE_EINVAL_INPUT || ret == -VE_ETOOLARGE);
        assert_int_equal(checked, 0);
        assert_non_null(err.message);
        if (strstr(err.message, expect) == NULL)
                fail_msg("message '%s' lacks '%s'", err.message, expect);
        pathf(img, "%s/%s.img", tpl_dir, name);
        assert_false(exists(img));
        assert_int_equal(leftovers(), 0);
        unlink(tar);
        ve_error_clear(&err);
}

static void test_refuse_dotdot(void **state)
{
        const struct tar_entry e[] = { { AE_IFREG, "etc/ok", NULL, 10 },
                                       { AE_IFREG, "../evil", NULL, 10 },
                                       { 0, NULL, NULL, 0 } };
        const struct tar_entry e2[] = { { AE_IFREG, "a/../../../evil", NULL, 10 },
                                        { 0, NULL, NULL, 0 } };
        char p[PATH_MAX];

        (void)state;
        skip_unless_root();
        import_must_fail("dotdot", e, 0, "entry '../evil': '..' component refused");
        import_must_fail("dotdot2", e2, 0, "'..' component refused");
        pathf(p, "%s/evil", tpl_dir);
        assert_false(exists(p));
        pathf(p, "%s/evil", base);
        assert_false(exists(p));
}

/* A name past PATH_MAX was once cut to fit and written under the cut name: an
 * entry ending in "/../../x" could lose its ".." and be accepted. It is refused
 * whole now, and the message shows only the start of the name. */
static void test_refuse_long_name(void **state)
{
        static char name[PATH_MAX + 300];
        struct tar_entry e[] = { { AE_IFREG, name, NULL, 10 }, { 0, NULL, NULL, 0 } };
        struct ve_template_import req = { .templates_dir = tpl_dir, .name = "longname" };
        struct ve_template_info info;
        struct ve_error err = { 0 };
        char tar[PATH_MAX];
        size_t n = 0;
        json_t *m;

        (void)state;
        skip_unless_root();
        while (n < PATH_MAX)
                n += (size_t)snprintf(name + n, sizeof(name) - n, "%s/", "dddddddddddddddddddd");
        snprintf(name + n, sizeof(name) - n, "../../evil");
        import_must_fail("longname", e, 0, "name longer than PATH_MAX refused");
        /* The message names the entry by its first 256 bytes and "...". */
        pathf(tar, "%s/longname.tar.gz", base);
        write_tar(tar, e);
        req.source = tar;
        assert_true(ve_template_import(&req, &info, &err) < 0);
        assert_non_null(strstr(err.message, "dddd...': name longer than PATH_MAX refused"));
        assert_true(strlen(err.message) < 512);
        unlink(tar);
        ve_error_clear(&err);
        /* Cut between characters: 256 bytes of three-byte characters would end
         * inside one, and the API would have no valid UTF-8 to show. */
        n = 0;
        while (n < PATH_MAX)
                n += (size_t)snprintf(name + n, sizeof(name) - n, "%s", "\u20ac\u20ac/");
        write_tar(tar, e);
        assert_true(ve_template_import(&req, &info, &err) < 0);
        m = json_string(err.message);
        assert_non_null(m);
        json_decref(m);
        assert_non_null(strstr(err.message, "\u20ac...': name longer than PATH_MAX refused"));
        unlink(tar);
        ve_error_clear(&err);
}

static void test_refuse_absolute(void **state)
{
        char abs[PATH_MAX];
        struct tar_entry e[] = { { AE_IFREG, abs, NULL, 10 }, { 0, NULL, NULL, 0 } };

        (void)state;
        skip_unless_root();
        pathf(abs, "%s/abs-evil", base);
        import_must_fail("absolute", e, 0, "absolute path refused");
        assert_false(exists(abs));
}

static void test_refuse_write_through_symlink(void **state)
{
        char outside[PATH_MAX], victim[PATH_MAX];
        struct tar_entry e[] = { { AE_IFLNK, "link", outside, 0 },
                                 { AE_IFREG, "link/passwd", NULL, 10 },
                                 { 0, NULL, NULL, 0 } };
        const struct tar_entry etc[] = { { AE_IFLNK, "link", "/etc", 0 },
                                         { AE_IFREG, "link/passwd", NULL, 10 },
                                         { 0, NULL, NULL, 0 } };

        (void)state;
        skip_unless_root();
        pathf(outside, "%s/outside", base);
        assert_int_equal(mkdir(outside, 0755), 0);
        import_must_fail("symlink", e, 0, "entry 'link/passwd': write through a symlink refused");
        pathf(victim, "%s/passwd", outside);
        assert_false(exists(victim));
        import_must_fail("symlink-etc", etc, 0, "write through a symlink refused");
}

static void test_refuse_device(void **state)
{
        const struct tar_entry e[] = { { AE_IFDIR, "dev", NULL, 0 },
                                       { AE_IFCHR, "dev/mem", NULL, 0 },
                                       { 0, NULL, NULL, 0 } };

        (void)state;
        skip_unless_root();
        import_must_fail("device", e, 0, "entry 'dev/mem': device node");
}

static void test_refuse_hardlink_escape(void **state)
{
        const struct tar_entry e[] = { { 1, "x", "../../x", 0 }, { 0, NULL, NULL, 0 } };
        char outside[PATH_MAX], through[PATH_MAX];
        struct tar_entry e2[] = { { AE_IFLNK, "l", through, 0 },
                                  { 1, "copy", "l/secret", 0 },
                                  { 0, NULL, NULL, 0 } };
        struct stat st;
        int fd;

        (void)state;
        skip_unless_root();
        pathf(outside, "%s/x", tpl_dir);
        fd = open(outside, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
        import_must_fail("hardlink", e, 0, "entry 'x': hardlink to '../../x'");
        pathf(through, "%s", tpl_dir);
        import_must_fail("hardlink2", e2, 0, "path through a symlink");
        assert_int_equal(stat(outside, &st), 0);
        assert_int_equal(st.st_nlink, 1);
        unlink(outside);
}

static void test_refuse_oversize(void **state)
{
        const struct tar_entry big[] = { { AE_IFREG, "small", NULL, 1000 },
                                         { AE_IFREG, "big", NULL, 2 * MIB },
                                         { 0, NULL, NULL, 0 } };
        const struct tar_entry many[] = { { AE_IFREG, "a", NULL, 400 * 1024 },
                                          { AE_IFREG, "b", NULL, 400 * 1024 },
                                          { AE_IFREG, "c", NULL, 400 * 1024 },
                                          { 0, NULL, NULL, 0 } };

        (void)state;
        skip_unless_root();
        import_must_fail("oversize", big, MIB,
                         "entry 'big' (2097152 bytes) takes the template past");
        import_must_fail("oversize2", many, MIB, "entry 'c'");
}

static void test_refuse_bad_checksum(void **state)
{
        const struct tar_entry e[] = { { AE_IFREG, "a", NULL, 10 }, { 0, NULL, NULL, 0 } };
        struct ve_template_import req = { .templates_dir = tpl_dir,
                                          .name = "sum",
                                          .sha256 = "00000000000000000000000000000000"
                                                    "00000000000000000000000000000000" };
        struct ve_template_info info;
        struct ve_error err = { 0 };
        char tar[PATH_MAX];

        (void)state;
        skip_unless_root();
        pathf(tar, "%s/sum.tar.gz", base);
        write_tar(tar, e);
        req.source = tar;
        assert_int_equal(ve_template_import(&req, &info, &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "not the 0000"));
        assert_int_equal(leftovers(), 0);
        req.sha256 = "xyz";
        assert_int_equal(ve_template_import(&req, &info, &err), -VE_EINVAL_INPUT);
        unlink(tar);
        ve_error_clear(&err);
}

/* Bytes that are no archive, and a cut one: bad input (400), not the host's error. */
static void test_refuse_junk(void **state)
{
        static const char *const names[] = { "junk", "cut" };
        struct ve_template_import req = { .templates_dir = tpl_dir };
        const struct tar_entry e[] = { { AE_IFREG, "a", NULL, 100000 }, { 0, NULL, NULL, 0 } };
        struct ve_template_info info;
        struct ve_error err = { 0 };
        char path[PATH_MAX], whole[PATH_MAX];
        FILE *f;

        (void)state;
        skip_unless_root();
        pathf(path, "%s/junk.tar.gz", base);
        f = fopen(path, "w");
        assert_non_null(f);
        for (int i = 0; i < 4096; i++)
                fputc((i * 7919) & 0xff, f);
        fclose(f);
        pathf(whole, "%s/whole.tar.gz", base);
        write_tar(whole, e);
        for (unsigned i = 0; i < 2; i++) {
                if (i == 1) {
                        struct stat st;

                        assert_int_equal(stat(whole, &st), 0);
                        pathf(path, "%s/cut.tar.gz", base);
                        assert_int_equal(truncate(whole, st.st_size / 2), 0);
                        assert_int_equal(rename(whole, path), 0);
                }
                req.source = path;
                req.name = names[i];
                assert_int_equal(ve_template_import(&req, &info, &err), -VE_EINVAL_INPUT);
                assert_non_null(err.message);
                assert_int_equal(leftovers(), 0);
                ve_error_clear(&err);
                unlink(path);
        }
}

/* ---- safe recursive delete ------------------------------------------------------ */

static void test_rmtree_refuses_mounts(void **state)
{
        char tree[PATH_MAX], inner[PATH_MAX], keep[PATH_MAX], link[PATH_MAX];
        struct ve_error err = { 0 };
        int fd;

        (void)state;
        skip_unless_root();
        pathf(tree, "%s/rm", base);
        pathf(inner, "%s/rm/a/b", base);
        pathf(keep, "%s/keep", base);
        pathf(link, "%s/rm/link", base);
        assert_int_equal(mkdir(tree, 0755), 0);
        assert_int_equal(mkdir(keep, 0755), 0);
        pathf(inner, "%s/rm/a", base);
        assert_int_equal(mkdir(inner, 0755), 0);
        pathf(inner, "%s/rm/a/b", base);
        assert_int_equal(mkdir(inner, 0755), 0);
        assert_int_equal(symlink(keep, link), 0);
        pathf(keep, "%s/keep/file", base);
        fd = open(keep, O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(mount("ved-test", inner, "tmpfs", 0, "size=1m"), 0);
        assert_int_equal(ve_rmtree(tree, &err), -EBUSY);
        assert_non_null(strstr(err.message, "unmount first"));
        assert_int_equal(ve_is_mounted(inner), 1);
        assert_int_equal(ve_rmtree_at(AT_FDCWD, tree, &err), -EBUSY);
        assert_int_equal(ve_is_mounted(inner), 1);
        assert_int_equal(umount2(inner, 0), 0);
        assert_int_equal(ve_rmtree(tree, &err), 0);
        assert_false(exists(tree));
        assert_true(exists(keep));
        assert_int_equal(ve_rmtree(tree, &err), 0); /* missing is fine */
        ve_error_clear(&err);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_name_parse),
                cmocka_unit_test(test_name_candidates),
                cmocka_unit_test(test_busybox_lifecycle),
                cmocka_unit_test(test_refuse_dotdot),
                cmocka_unit_test(test_refuse_long_name),
                cmocka_unit_test(test_refuse_absolute),
                cmocka_unit_test(test_refuse_write_through_symlink),
                cmocka_unit_test(test_refuse_device),
                cmocka_unit_test(test_refuse_hardlink_escape),
                cmocka_unit_test(test_refuse_oversize),
                cmocka_unit_test(test_refuse_bad_checksum),
                cmocka_unit_test(test_refuse_junk),
                cmocka_unit_test(test_rmtree_refuses_mounts),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
