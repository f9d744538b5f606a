/* Private areas as ext4 images.
 *
 * Measured on the development VM (host file system ext4 on virtio, kernel
 * 6.18, e2fsprogs 1.47.0), ve_private_create() from a golden image:
 *
 *   golden image                        clone + resize2fs   mkfs.ext4 -d (diskinodes;
 *                                                           now mkfs and a copy,
 *                                                           see copy_tree_in())
 *   busybox: 35 MiB, 2 MiB of data      1 GiB: 0.016 s      1 GiB: 0.044 s
 *                                       10 GiB: 0.019 s     10 GiB: 0.060 s
 *   /usr/lib: 4.2 GiB, 78k files        8 GiB: 10.2 s       8 GiB: 37.7 s
 *                                       20 GiB: 9.7 s       20 GiB: 30.6 s
 *
 * Reflink (FICLONE) is not available on ext4, so these are sparse copies
 * (SEEK_DATA/SEEK_HOLE + copy_file_range): time follows the data in the
 * template, not diskspace. On XFS or btrfs the reflink makes the clone
 * constant-time. Importing the /usr/lib tarball (4.5 GB, uncompressed) took
 * 86 s, the busybox one 0.16 s. tests/bench/bench_create_image.sh repeats the
 * busybox figures with the command-line tools.
 *
 * Debian 12 (debian-12-x86_64: 179 MB of data in a 247 MiB golden image), 2 GiB
 * diskspace, tests/bench/bench_debian.sh, 10 VEs: vectl create median 290 ms
 * when the copy was written back only by the fsync at the end (copy ~90 ms, then
 * fsync ~60 ms, tune2fs + resize2fs ~20 ms, the rest the operation's records);
 * 145 ms with the writeback started chunk by chunk during the copy (sparse_copy()),
 * against 1483 ms for LXC's dir backend (cp -a of the same tree + sync): 0.097 of
 * it. A constant-time create on ext4 would need a shared read-only template layer
 * (overlay over the golden image, per-VE upper image for the quota); not needed.
 */
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "disk.h"
#include "loop.h"
#include "mount.h"
#include "parse.h"

#define BLOCK           4096ULL
#define TOOL_OUTPUT_MAX 2048

static const char *const tool_dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin", NULL };

static int find_tool(const char *name, char *path, size_t len)
{
        int i;

        for (i = 0; tool_dirs[i]; i++) {
                snprintf(path, len, "%s/%s", tool_dirs[i], name);
                if (access(path, X_OK) == 0)
                        return 0;
        }
        return -ENOENT;
}

/* The tool with stdout and stderr to the pipe, stdin from /dev/null, a fixed
 * environment, default signal handling and no inherited fds beyond 0-2.
 * posix_spawn (a vfork) rather than fork: copying the daemon's page tables cost
 * more than some of the tools' own work. */
static int spawn_tool(const char *path, char *const argv[], int out_fd, pid_t *pid)
{
        static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int ret;

        sigemptyset(&none);
        sigfillset(&all);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
        posix_spawn_file_actions_addclosefrom_np(&fa, 3);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        ret = posix_spawn(pid, path, &fa, &attr, argv, envp);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        return -ret;
}

/* Read the child's output into buf, keeping the last bytes if it is long. */
static void collect_output(int fd, char *buf, size_t len)
{
        size_t used = 0;
        char chunk[512];
        ssize_t n;

        buf[0] = '\0';
        while ((n = read(fd, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR)) {
                if (n <= 0)
                        continue;
                if (used + (size_t)n >= len) {
                        size_t drop = used + (size_t)n - (len - 1);

                        drop = drop > used ? used : drop;
                        memmove(buf, buf + drop, used - drop);
                        used -= drop;
                }
                if ((size_t)n >= len)
                        n = (ssize_t)(len - 1);
                memcpy(buf + used, chunk, (size_t)n);
                used += (size_t)n;
                buf[used] = '\0';
        }
        while (used > 0 && (buf[used - 1] == '\n' || buf[used - 1] == ' '))
                buf[--used] = '\0';
}

/* Run an e2fsprogs tool; exit codes up to ok_max count as success. Its output
 * goes into the error message when it fails. Returns the exit code or -errno. */
static int run_tool(char *const argv[], int ok_max, struct ve_error *err)
{
        char path[PATH_MAX], out[TOOL_OUTPUT_MAX];
        int pipefd[2], status, ret;
        pid_t pid;

        if (find_tool(argv[0], path, sizeof(path)) < 0)
                return ve_error_set(err, ENOENT, "%s not found (install e2fsprogs)", argv[0]);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return ve_error_errno(err, errno, "pipe for %s", argv[0]);
        ret = spawn_tool(path, argv, pipefd[1], &pid);
        close(pipefd[1]);
        if (ret < 0) {
                close(pipefd[0]);
                return ve_error_errno(err, -ret, "run %s", path);
        }
        collect_output(pipefd[0], out, sizeof(out));
        close(pipefd[0]);
        while ((ret = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
                ;
        if (ret < 0)
                return ve_error_errno(err, errno, "wait for %s", argv[0]);
        if (WIFEXITED(status) && WEXITSTATUS(status) <= ok_max)
                return WEXITSTATUS(status);
        if (WIFEXITED(status))
                return ve_error_set(err, EIO, "%s exited with status %d: %s", argv[0],
                                    WEXITSTATUS(status), out[0] ? out : "no output");
        return ve_error_set(err, EIO, "%s killed by signal %d", argv[0], WTERMSIG(status));
}

static int create_sized(const char *img, uint64_t size, struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;

        fd = open(img, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return ve_error_errno(err, errno, "create %s", img);
        if (ftruncate(fd, (off_t)size) < 0)
                return ve_error_errno(err, errno, "size %s to %llu bytes", img,
                                      (unsigned long long)size);
        return 0;
}

static int stamp_superblocks(const char *img, bool uuid, struct ve_error *err);

/* A fresh directory "<base><suffix>-XXXXXX" to mount on. */
static int temp_mountpoint(const char *base, const char *suffix, char *mnt, size_t len,
                           struct ve_error *err)
{
        int n = snprintf(mnt, len, "%s%s-XXXXXX", base, suffix);

        if (n < 0 || (size_t)n >= len)
                return ve_error_set(err, ENAMETOOLONG, "path too long: %s", base);
        if (mkdtemp(mnt) == NULL)
                return ve_error_errno(err, errno, "create %s", mnt);
        return 0;
}

/* The tree at src_dir copied into img's fresh file system by the kernel, as cp
 * does it. Not mkfs.ext4 -d: it links each entry with a linear scan of its
 * directory, quadratic in the directory's size (here 20,000 files in one
 * directory took 27 s, 40,000 took 96 s; a tarball of them was a denial of
 * service), where the kernel's hashed directories take about a second. The
 * copy keeps owners, modes, times, hard links and xattrs (file capabilities). */
static int copy_tree_in(const char *img, const char *src_dir, struct ve_error *err)
{
        char mnt[PATH_MAX], loop[64];
        char *argv[] = { "cp", "-dR",           "--preserve=mode,ownership,timestamps,links,xattr",
                         "-T", (char *)src_dir, mnt,
                         NULL };
        int ret, ret2;

        ret = temp_mountpoint(img, ".fill", mnt, sizeof(mnt), err);
        if (ret < 0)
                return ret;
        ret = ve_private_mount(img, mnt, loop, sizeof(loop), err);
        if (ret == 0) {
                ret = run_tool(argv, 0, err);
                ret2 = ve_private_umount(mnt, ret < 0 ? NULL : err);
                ret = ret < 0 ? ret : ret2;
        }
        if (rmdir(mnt) < 0 && ret == 0)
                ret = ve_error_errno(err, errno, "remove %s", mnt);
        return ret;
}

int ve_image_mkfs(const char *img, uint64_t size, uint64_t inodes, const char *src_dir,
                  struct ve_error *err)
{
        char inode_arg[32];
        char *argv[20];
        int n = 0, ret;

        size &= ~(BLOCK - 1);
        ret = create_sized(img, size, err);
        if (ret < 0)
                return ret;
        argv[n++] = "mkfs.ext4";
        argv[n++] = "-q";
        argv[n++] = "-F";
        argv[n++] = "-b";
        argv[n++] = "4096";
        argv[n++] = "-I";
        argv[n++] = "256";
        argv[n++] = "-m";
        argv[n++] = "0";
        snprintf(inode_arg, sizeof(inode_arg), "%llu",
                 (unsigned long long)(inodes ? inodes : VE_IMAGE_BYTES_PER_INODE));
        argv[n++] = inodes ? "-N" : "-i";
        argv[n++] = inode_arg;
        /* metadata_csum_seed lets each clone get its own UUID without
         * rewriting every checksum (tune2fs -U). No resize_inode: it only
         * serves online growth past the reserved GDT blocks (which needs
         * CAP_SYS_RESOURCE, see disk.h), and resize2fs 1.47.0 fails
         * ("Illegal doubly indirect block") growing an image offline past
         * them, e.g. a 64 MiB golden image to more than 64 GiB. */
        argv[n++] = "-O";
        argv[n++] = "metadata_csum_seed,^resize_inode";
        argv[n++] = "-E";
        argv[n++] = "root_owner=0:0,assume_storage_prezeroed=1";
        argv[n++] = (char *)img;
        argv[n] = NULL;
        ret = run_tool(argv, 0, err);
        if (ret == 0 && src_dir != NULL)
                ret = copy_tree_in(img, src_dir, err);
        if (ret == 0)
                ret = stamp_superblocks(img, false, err);
        if (ret < 0)
                return ve_error_prefix(err, "make file system in %s", img);
        return 0;
}

static uint32_t le32(const unsigned char *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

/* Superblock fields and feature bits used here (ext4's on-disk layout). */
#define SB_COMPAT_HAS_JOURNAL      0x4
#define SB_COMPAT_RESIZE_INODE     0x10
#define SB_INCOMPAT_META_BG        0x10
#define SB_INCOMPAT_64BIT          0x80
#define SB_RO_COMPAT_SPARSE        0x1
#define SB_RO_COMPAT_BIGALLOC      0x200
#define SB_JNL_BACKUP_BLOCKS       1
#define SB_RO_COMPAT_GDT_CSUM      0x10
#define SB_RO_COMPAT_METADATA_CSUM 0x400
#define SB_INCOMPAT_CSUM_SEED      0x2000
#define SB_UUID                    0x68
#define SB_OVERHEAD                0x248
#define SB_CHECKSUM                0x3FC

static bool is_power_of(uint64_t n, uint64_t base)
{
        while (n > 1 && n % base == 0)
                n /= base;
        return n == 1;
}

/* Groups that hold a superblock backup (sparse_super: 0, 1, powers of 3, 5, 7). */
static bool group_has_super(const unsigned char *sb, uint64_t g)
{
        if (!(le32(sb + 0x64) & SB_RO_COMPAT_SPARSE) || g <= 1)
                return true;
        return g % 2 == 1 && (is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7));
}

/* The blocks ext4_calculate_overhead() counts, for the common layout
 * (no bigalloc, no meta_bg: otherwise 0, and used space reads high). */
static uint64_t overhead_blocks(const unsigned char *sb, const struct ve_image_geometry *geo)
{
        uint64_t groups =
            (geo->blocks - le32(sb + 0x14) + geo->blocks_per_group - 1) / geo->blocks_per_group;
        uint64_t desc = (le32(sb + 0x60) & SB_INCOMPAT_64BIT) ? le16(sb + 0xFE) : 32;
        uint64_t gdt, itb, n = le32(sb + 0x14), g;

        if ((le32(sb + 0x60) & SB_INCOMPAT_META_BG) || (le32(sb + 0x64) & SB_RO_COMPAT_BIGALLOC) ||
            desc == 0)
                return 0;
        gdt = (groups * desc + geo->block_size - 1) / geo->block_size;
        itb = (geo->inodes_per_group * le16(sb + 0x58) + geo->block_size - 1) / geo->block_size;
        for (g = 0; g < groups; g++)
                n += (group_has_super(sb, g) ? 1 + gdt : 0) + itb + 2;
        /* The journal inode's size, backed up in s_jnl_blocks[15..16]. */
        if ((le32(sb + 0x5C) & SB_COMPAT_HAS_JOURNAL) && sb[0xFD] == SB_JNL_BACKUP_BLOCKS)
                n += ((uint64_t)le32(sb + 0x10C + 15 * 4) << 32 | le32(sb + 0x10C + 16 * 4)) /
                     geo->block_size;
        return n;
}

/* The ext4 magic, and a block size ved can read (1 KiB to 64 KiB). */
static bool is_ext4_super(const unsigned char *sb)
{
        return sb[56] == 0x53 && sb[57] == 0xef && le32(sb + 24) <= 6;
}

/* Fill geo from a superblock; false if it is not one ved can read. */
static bool parse_geometry(const unsigned char *sb, struct ve_image_geometry *geo)
{
        bool is64 = (le32(sb + 96) & 0x80) != 0;

        if (!is_ext4_super(sb))
                return false;
        geo->block_size = 1024ULL << le32(sb + 24);
        geo->blocks = le32(sb + 4) | (is64 ? (uint64_t)le32(sb + 0x150) << 32 : 0);
        geo->free_blocks = le32(sb + 12) | (is64 ? (uint64_t)le32(sb + 0x158) << 32 : 0);
        geo->blocks_per_group = le32(sb + 32);
        geo->inodes = le32(sb + 0);
        geo->free_inodes = le32(sb + 16);
        geo->inodes_per_group = le32(sb + 40);
        geo->reserved_blocks = le32(sb + 8) | (is64 ? (uint64_t)le32(sb + 0x154) << 32 : 0);
        if (geo->blocks_per_group == 0 || geo->inodes_per_group == 0)
                return false;
        geo->overhead_blocks = overhead_blocks(sb, geo);
        return true;
}

int ve_image_geometry(const char *img, struct ve_image_geometry *geo, struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        unsigned char sb[1024];

        fd = open(img, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", img);
        if (pread(fd, sb, sizeof(sb), 1024) != (ssize_t)sizeof(sb))
                return ve_error_set(err, EINVAL, "%s: too short for an ext4 file system", img);
        if (!is_ext4_super(sb))
                return ve_error_set(err, EINVAL, "%s is not an ext4 file system", img);
        if (!parse_geometry(sb, geo))
                return ve_error_set(err, EINVAL, "%s: corrupt ext4 superblock", img);
        return 0;
}

/* Copy only the data extents of in to out, leaving holes as holes. Each
 * COPY_CHUNK copied is handed to writeback at once (sync_file_range without
 * waiting), so the disk writes while the rest is copied and the fsync that
 * makes the clone durable finds little left to do: a Debian VE's create went
 * from 290 to 145 ms (see the top of this file). */
#define COPY_CHUNK (16 << 20)

static int sparse_copy(int in, int out, off_t size)
{
        off_t pos = 0, data, hole;

        while (pos < size) {
                data = lseek(in, pos, SEEK_DATA);
                if (data < 0)
                        return errno == ENXIO ? 0 : -errno;
                hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                while (data < hole) {
                        loff_t off_in = data, off_out = data;
                        size_t len = hole - data < COPY_CHUNK ? (size_t)(hole - data) : COPY_CHUNK;
                        ssize_t n = copy_file_range(in, &off_in, out, &off_out, len, 0);

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                return n < 0 ? -errno : -EIO;
                        /* Only a hint: a failure leaves it to the fsync. */
                        sync_file_range(out, data, n, SYNC_FILE_RANGE_WRITE);
                        data += n;
                }
                pos = hole;
        }
        return 0;
}

/* Clone golden into the new file tmp: reflink, else sparse copy. */
static int clone_file(const char *golden, const char *tmp, struct ve_error *err)
{
        _cleanup_close_ int in = -EBADF;
        _cleanup_close_ int out = -EBADF;
        struct stat st;
        int ret;

        in = open(golden, O_RDONLY | O_CLOEXEC);
        if (in < 0 || fstat(in, &st) < 0)
                return ve_error_errno(err, errno, "open golden image %s", golden);
        out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return ve_error_errno(err, errno, "create %s", tmp);
        if (ioctl(out, FICLONE, in) == 0)
                return 0;
        ret = ftruncate(out, st.st_size);
        if (ret < 0)
                return ve_error_errno(err, errno, "size %s", tmp);
        ret = sparse_copy(in, out, st.st_size);
        if (ret < 0)
                return ve_error_errno(err, ret, "copy %s to %s", golden, tmp);
        return 0;
}

static int fsync_path(const char *path, int flags, struct ve_error *err)
{
        _cleanup_close_ int fd = open(path, flags | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
                return ve_error_errno(err, errno, "sync %s", path);
        return 0;
}

/* fsync tmp, rename it to dest (never replacing), fsync the directory. */
static int commit_file(const char *tmp, const char *dest, struct ve_error *err)
{
        _cleanup_free_ char *dir = strdup(dest);
        int ret;

        if (dir == NULL)
                return ve_error_errno(err, ENOMEM, "commit %s", dest);
        ret = fsync_path(tmp, O_RDONLY, err);
        if (ret < 0)
                return ret;
        ret = renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE);
        if (ret < 0)
                return ve_error_errno(err, errno, "rename %s to %s", tmp, dest);
        return fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY, err);
}

/* Would growing img to size use up its reserved GDT blocks? resize2fs 1.47.0
 * cannot grow past them with resize_inode (see ve_image_mkfs()). */
static int outgrows_resize_inode(const char *img, uint64_t size, bool *outgrows,
                                 struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        unsigned char sb[1024];
        uint64_t bs, groups, desc, per_block, gdt;

        fd = open(img, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", img);
        if (pread(fd, sb, sizeof(sb), 1024) != (ssize_t)sizeof(sb) || le32(sb + 32) == 0)
                return ve_error_set(err, EINVAL, "%s: cannot read its ext4 superblock", img);
        *outgrows = false;
        if (!(le32(sb + 0x5C) & SB_COMPAT_RESIZE_INODE))
                return 0;
        bs = 1024ULL << le32(sb + 24);
        desc = (le32(sb + 0x60) & SB_INCOMPAT_64BIT) ? le16(sb + 0xFE) : 32;
        per_block = bs / (desc ? desc : 32);
        groups = (le32(sb + 4) + (uint64_t)le32(sb + 32) - 1) / le32(sb + 32);
        gdt = (groups + per_block - 1) / per_block + le16(sb + 0xCE);
        *outgrows = (size / bs + le32(sb + 32) - 1) / le32(sb + 32) > gdt * per_block;
        return 0;
}

/* Drop resize_inode (tune2fs asks for a full e2fsck after that). */
static int drop_resize_inode(const char *img, struct ve_error *err)
{
        char *tune[] = { "tune2fs", "-O", "^resize_inode", (char *)img, NULL };
        char *fsck[] = { "e2fsck", "-f", "-y", (char *)img, NULL };
        int ret;

        ret = run_tool(tune, 0, err);
        if (ret >= 0)
                ret = run_tool(fsck, 1, err); /* 1: it fixed what tune2fs left */
        return ret < 0 ? ret : 0;
}

static int grow_offline(const char *img, uint64_t size, struct ve_error *err)
{
        char *resize[] = { "resize2fs", (char *)img, NULL };
        bool outgrows;
        int ret;

        ret = outgrows_resize_inode(img, size, &outgrows, err);
        if (ret == 0 && outgrows)
                ret = drop_resize_inode(img, err);
        if (ret < 0)
                return ret;
        ret = truncate(img, (off_t)size);
        if (ret < 0)
                return ve_error_errno(err, errno, "grow %s", img);
        ret = run_tool(resize, 0, err);
        return ret < 0 ? ret : 0;
}

/* CRC32C as ext4 uses it (ext2fs_crc32c_le(): no final inversion). */
static uint32_t crc32c(uint32_t crc, const unsigned char *p, size_t n)
{
        while (n--) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0x82F63B78u & -(crc & 1));
        }
        return crc;
}

/* Put uuid (unless NULL) and overhead (unless 0) into the superblock copy at
 * off, with its checksum when csum. A backup (group > 0) must say it is that
 * group's, or nothing is written. */
static int put_super(int fd, off_t off, uint64_t group, const unsigned char *uuid,
                     uint32_t overhead, bool csum)
{
        unsigned char sb[1024];
        uint32_t c;

        if (pread(fd, sb, sizeof(sb), off) != (ssize_t)sizeof(sb))
                return -EIO;
        if (!is_ext4_super(sb) || (group > 0 && le16(sb + 0x5A) != (group & 0xffff)))
                return -EINVAL;
        if (uuid != NULL)
                memcpy(sb + SB_UUID, uuid, 16);
        if (overhead != 0)
                for (int i = 0; i < 4; i++)
                        sb[SB_OVERHEAD + i] = (unsigned char)(overhead >> (8 * i));
        if (csum) {
                c = crc32c(~0u, sb, SB_CHECKSUM);
                for (int i = 0; i < 4; i++)
                        sb[SB_CHECKSUM + i] = (unsigned char)(c >> (8 * i));
        }
        return pwrite(fd, sb, sizeof(sb), off) == (ssize_t)sizeof(sb) ? 0 : -EIO;
}

/* Can the UUID change without touching anything but the superblocks? With
 * metadata_csum the group descriptors, bitmaps, inodes and directory blocks are
 * checksummed from a seed: the UUID itself, unless metadata_csum_seed keeps the
 * seed in the superblock; gdt_csum seeds from the UUID too. meta_bg places its
 * backups elsewhere. */
static bool uuid_in_superblocks_only(const unsigned char *sb)
{
        uint32_t incompat = le32(sb + 0x60), ro = le32(sb + 0x64);

        if (incompat & SB_INCOMPAT_META_BG)
                return false;
        if (ro & SB_RO_COMPAT_METADATA_CSUM)
                return (incompat & SB_INCOMPAT_CSUM_SEED) != 0;
        return !(ro & SB_RO_COMPAT_GDT_CSUM);
}

/* Write into every superblock copy of img:
 * - with uuid, a new random UUID, as tune2fs -U random does. In process where
 *   only the superblocks hold it (the golden images ved makes have
 *   metadata_csum_seed): running tune2fs was a third of a create.
 * - the overhead ext4 computes at each mount (s_overhead_clusters). The kernel
 *   writes it when the superblock says otherwise, into every backup with a
 *   read and a synchronous write each: the first mount of a new 10 GiB image
 *   took 2.2 ms instead of 1.2 (more on a busy host), at a VE's first start
 *   or its first after a resize. A wrong value costs only that: the kernel
 *   counts the overhead anew at every mount. */
static int stamp_superblocks(const char *img, bool uuid, struct ve_error *err)
{
        char *tune[] = { "tune2fs", "-U", "random", (char *)img, NULL };
        _cleanup_close_ int fd = -EBADF;
        unsigned char sb[1024], id[16];
        struct ve_image_geometry geo;
        uint64_t overhead, first, groups;
        bool csum;
        int ret;

        fd = open(img, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", img);
        if (pread(fd, sb, sizeof(sb), 1024) != (ssize_t)sizeof(sb) || !parse_geometry(sb, &geo))
                return ve_error_set(err, EINVAL, "%s is not an ext4 file system", img);
        if (uuid && !uuid_in_superblocks_only(sb)) {
                ret = run_tool(tune, 0, err);
                return ret < 0 ? ret : 0;
        }
        overhead = geo.overhead_blocks;
        if (overhead > UINT32_MAX || (le32(sb + 0x64) & SB_RO_COMPAT_BIGALLOC))
                overhead = 0; /* counted in clusters there: leave it to the kernel */
        if (!uuid && (overhead == 0 || le32(sb + SB_OVERHEAD) == overhead))
                return 0;
        if (uuid) {
                if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
                        return ve_error_errno(err, errno, "random UUID");
                id[6] = (id[6] & 0x0f) | 0x40; /* version 4 */
                id[8] = (id[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        }
        csum = (le32(sb + 0x64) & SB_RO_COMPAT_METADATA_CSUM) != 0;
        first = le32(sb + 20);
        groups = (geo.blocks - first + geo.blocks_per_group - 1) / geo.blocks_per_group;
        for (uint64_t g = 0; g < groups; g++) {
                if (!group_has_super(sb, g))
                        continue;
                ret = put_super(
                    fd,
                    g == 0 ? 1024 : (off_t)((g * geo.blocks_per_group + first) * geo.block_size), g,
                    uuid ? id : NULL, (uint32_t)overhead, csum);
                if (ret < 0)
                        return ve_error_errno(err, -ret, "write the superblock of %s (group %llu)",
                                              img, (unsigned long long)g);
        }
        return 0;
}

/* Grown clones of a golden image "<dir>/<name>.img" are kept in
 * "<dir>/<name>.sizes/<fs size>.img", at most SIZES_KEPT per template (the least
 * recently used go first): a hosting provider sells a few plan sizes, and a
 * create of a size seen before is then a clone and a new UUID, without
 * resize2fs. Each costs the template's data on the host (a sparse copy).
 * ve_template_remove() removes them with the template. */
#define SIZES_KEPT 4

static int sized_paths(const char *golden, uint64_t size, char *dir, char *path, size_t len)
{
        size_t n = strlen(golden);
        int ret;

        if (n < 5 || strcmp(golden + n - 4, ".img") != 0)
                return -EINVAL;
        ret = snprintf(dir, len, "%.*s.sizes", (int)(n - 4), golden);
        if (ret < 0 || (size_t)ret >= len)
                return -ENAMETOOLONG;
        ret = snprintf(path, len, "%s/%llu.img", dir, (unsigned long long)size);
        return ret < 0 || (size_t)ret >= len ? -ENAMETOOLONG : 0;
}

/* Remove the least recently used kept sizes beyond SIZES_KEPT. */
static void prune_sizes(const char *dir)
{
        for (;;) {
                _cleanup_closedir_ DIR *d = opendir(dir);
                char oldest[NAME_MAX + 1] = "";
                struct timespec when = { 0, 0 };
                struct dirent *de;
                struct stat st;
                int n = 0;

                if (d == NULL)
                        return;
                while ((de = readdir(d)) != NULL) {
                        size_t len = strlen(de->d_name);

                        if (de->d_name[0] == '.' || len < 5 ||
                            strcmp(de->d_name + len - 4, ".img") ||
                            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        n++;
                        if (oldest[0] == '\0' || st.st_mtim.tv_sec < when.tv_sec ||
                            (st.st_mtim.tv_sec == when.tv_sec &&
                             st.st_mtim.tv_nsec < when.tv_nsec)) {
                                snprintf(oldest, sizeof(oldest), "%s", de->d_name);
                                when = st.st_mtim;
                        }
                }
                if (n <= SIZES_KEPT || unlinkat(dirfd(d), oldest, 0) < 0)
                        return;
        }
}

/* Keep img (a fresh clone of golden grown to size) for later creates of that
 * size. Best effort: a failure only means the next create grows its own. The
 * copy is written under a temporary name that ve_template_cleanup() recognises. */
static void keep_size(const char *golden, const char *img, uint64_t size)
{
        char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
        _cleanup_free_ char *g1 = strdup(golden), *g2 = strdup(golden);

        if (g1 == NULL || g2 == NULL || sized_paths(golden, size, dir, path, sizeof(path)) < 0)
                return;
        if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-%llu-%ld", dirname(g1), basename(g2),
                     (unsigned long long)size, (long)syscall(SYS_gettid)) >= (int)sizeof(tmp))
                return;
        unlink(tmp);
        if (clone_file(img, tmp, NULL) < 0 || fsync_path(tmp, O_RDONLY, NULL) < 0 ||
            (mkdir(dir, 0700) < 0 && errno != EEXIST) ||
            renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
                unlink(tmp);
                return;
        }
        fsync_path(dir, O_RDONLY | O_DIRECTORY, NULL);
        prune_sizes(dir);
}

static int create_by_clone(const char *golden, const char *tmp, uint64_t size, struct ve_error *err)
{
        char dir[PATH_MAX], sized[PATH_MAX];
        int ret;

        if (sized_paths(golden, size, dir, sized, sizeof(sized)) == 0 &&
            clone_file(sized, tmp, NULL) == 0) {
                utimensat(AT_FDCWD, sized, NULL, 0); /* recently used */
                return stamp_superblocks(tmp, true, err);
        }
        unlink(tmp);
        ret = clone_file(golden, tmp, err);
        if (ret == 0)
                ret = grow_offline(tmp, size, err);
        if (ret == 0)
                keep_size(golden, tmp, size);
        if (ret == 0)
                ret = stamp_superblocks(tmp, true, err);
        return ret;
}

/* mkfs -d needs a directory: mount the golden image read-only next to dest. */
static int create_by_mkfs(const char *golden, const char *tmp, uint64_t size, uint64_t inodes,
                          struct ve_error *err)
{
        char mnt[PATH_MAX];
        int ret, ret2;

        ret = temp_mountpoint(tmp, ".mnt", mnt, sizeof(mnt), err);
        if (ret < 0)
                return ret;
        ret = ve_image_mount_ro(golden, mnt, err);
        if (ret == 0) {
                ret = ve_image_mkfs(tmp, size, inodes, mnt, err);
                ret2 = ve_private_umount(mnt, ret < 0 ? NULL : err);
                ret = ret < 0 ? ret : ret2;
        }
        if (rmdir(mnt) < 0 && ret == 0)
                ret = ve_error_errno(err, errno, "remove %s", mnt);
        return ret;
}

/* Inodes a clone of geo grown to size would have. */
static uint64_t clone_inodes(const struct ve_image_geometry *geo, uint64_t size)
{
        uint64_t blocks = size / geo->block_size;
        uint64_t groups = (blocks + geo->blocks_per_group - 1) / geo->blocks_per_group;

        return groups * geo->inodes_per_group;
}

static int make_tmp_name(const char *dest, char *tmp, size_t len, struct ve_error *err)
{
        _cleanup_free_ char *d1 = strdup(dest);
        _cleanup_free_ char *d2 = strdup(dest);
        int ret;

        if (d1 == NULL || d2 == NULL)
                return ve_error_errno(err, ENOMEM, "create %s", dest);
        ret = snprintf(tmp, len, "%s/.%s.tmp-%d", dirname(d1), basename(d2), (int)getpid());
        if (ret < 0 || (size_t)ret >= len)
                return ve_error_set(err, ENAMETOOLONG, "path too long: %s", dest);
        return 0;
}

int ve_private_create(const char *golden_img, const char *dest_img, uint64_t diskspace,
                      uint64_t diskinodes, struct ve_error *err)
{
        struct ve_image_geometry geo;
        char tmp[PATH_MAX];
        struct stat st;
        uint64_t have, fs_size;
        int ret;

        diskspace &= ~(BLOCK - 1);
        fs_size = ve_disk_fs_size(diskspace);
        ret = ve_image_geometry(golden_img, &geo, err);
        if (ret < 0 || (ret = make_tmp_name(dest_img, tmp, sizeof(tmp), err)) < 0)
                return ve_error_prefix(err, "create private area %s", dest_img);
        if (stat(golden_img, &st) == 0 && (uint64_t)st.st_size > diskspace)
                return ve_error_set(
                    err, VE_EINVAL_INPUT,
                    "diskspace %llu is smaller than the template image (%llu bytes)",
                    (unsigned long long)diskspace, (unsigned long long)st.st_size);
        if (access(dest_img, F_OK) == 0)
                return ve_error_set(err, EEXIST, "private area %s already exists", dest_img);
        unlink(tmp); /* left by a crashed run of a process with our pid */
        have = clone_inodes(&geo, fs_size);
        if (diskinodes == 0 || (have >= diskinodes && have - diskinodes <= diskinodes / 10))
                ret = create_by_clone(golden_img, tmp, fs_size, err);
        else
                ret = create_by_mkfs(golden_img, tmp, fs_size, diskinodes, err);
        if (ret == 0)
                ret = commit_file(tmp, dest_img, err);
        if (ret < 0) {
                unlink(tmp);
                return ve_error_prefix(err, "create private area %s", dest_img);
        }
        return 0;
}

static int grow_online(const char *img, uint64_t old_size, uint64_t size, struct ve_error *err)
{
        char dev[64];
        char *resize[] = { "resize2fs", dev, NULL };
        int ret;

        /* ext4's online resize ioctl demands CAP_SYS_RESOURCE; say so plainly
         * rather than pass on resize2fs's "Permission denied". */
        if (!ve_caps_have(CAP_SYS_RESOURCE))
                return ve_error_set(err, EPERM,
                                    "growing a mounted ext4 file system needs "
                                    "CAP_SYS_RESOURCE, which this process lacks");
        ret = ve_loop_find(img, dev, sizeof(dev), err);
        if (ret == -ENOENT)
                return ve_error_set(err, ENXIO, "%s is not attached to a loop device", img);
        if (ret < 0)
                return ret;
        if (truncate(img, (off_t)size) < 0)
                return ve_error_errno(err, errno, "grow %s", img);
        ret = ve_loop_set_capacity(dev, err);
        if (ret == 0)
                ret = run_tool(resize, 0, err);
        if (ret < 0 && truncate(img, (off_t)old_size) == 0)
                ve_loop_set_capacity(dev, NULL); /* back to what the file system spans */
        return ret < 0 ? ret : 0;
}

static int check_offline(const char *img, struct ve_error *err)
{
        char *fsck[] = { "e2fsck", "-f", "-y", (char *)img, NULL };
        int ret;

        /* 1: errors were corrected, which is fine before a resize. */
        ret = run_tool(fsck, 1, err);
        return ret < 0 ? ret : 0;
}

static int shrink_offline(const char *img, uint64_t size, struct ve_error *err)
{
        struct ve_image_geometry geo;
        char size_arg[32], hu[16], hs[16];
        char *resize[] = { "resize2fs", (char *)img, size_arg, NULL };
        uint64_t used;
        int ret;

        ret = ve_image_geometry(img, &geo, err);
        if (ret < 0)
                return ret;
        used = (geo.blocks - geo.free_blocks) * geo.block_size;
        ve_format_size(used, hu, sizeof(hu));
        ve_format_size(size, hs, sizeof(hs));
        if (size <= used)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "cannot shrink to %s: %s is in use (file data and metadata)",
                                    hs, hu);
        snprintf(size_arg, sizeof(size_arg), "%lluK", (unsigned long long)(size / 1024));
        ret = run_tool(resize, 0, err);
        if (ret < 0)
                return ve_error_prefix(err, "shrink to %s with %s in use", hs, hu);
        if (truncate(img, (off_t)size) < 0)
                return ve_error_errno(err, errno, "truncate %s", img);
        return 0;
}

int ve_private_resize(const char *img, uint64_t new_size, bool mounted, struct ve_error *err)
{
        struct stat st;
        int ret;

        new_size &= ~(BLOCK - 1);
        if (stat(img, &st) < 0)
                return ve_error_errno(err, errno, "resize %s", img);
        if (mounted && new_size < (uint64_t)st.st_size)
                return ve_error_set(err, VE_ECONFLICT,
                                    "resize %s: ext4 cannot shrink while mounted; stop the VE "
                                    "first",
                                    img);
        if (mounted)
                ret = grow_online(img, (uint64_t)st.st_size, new_size, err);
        else if ((ret = ve_loop_refuse_attached(img, err)) == 0 &&
                 (ret = check_offline(img, err)) == 0)
                ret = new_size >= (uint64_t)st.st_size ? grow_offline(img, new_size, err)
                                                       : shrink_offline(img, new_size, err);
        if (ret == 0 && !mounted)
                ret = stamp_superblocks(img, false, err);
        if (ret < 0)
                return ve_error_prefix(err, "resize %s", img);
        return 0;
}

int ve_private_rebuild(const char *img, uint64_t size, uint64_t inodes, struct ve_error *err)
{
        char tmp[PATH_MAX];
        int ret;

        size &= ~(BLOCK - 1);
        ret = ve_loop_refuse_attached(img, err);
        if (ret == 0)
                ret = make_tmp_name(img, tmp, sizeof(tmp), err);
        if (ret < 0)
                return ve_error_prefix(err, "rebuild %s", img);
        unlink(tmp);
        ret = create_by_mkfs(img, tmp, size, inodes, err);
        if (ret == 0)
                ret = fsync_path(tmp, O_RDONLY, err);
        /* Over the old image in one step: a crash leaves the old or the new one. */
        if (ret == 0 && rename(tmp, img) < 0)
                ret = ve_error_errno(err, errno, "rename %s to %s", tmp, img);
        if (ret < 0) {
                unlink(tmp);
                return ve_error_prefix(err, "rebuild %s", img);
        }
        return 0;
}

int ve_private_usage(const char *mountpoint, struct ve_disk_usage *usage, struct ve_error *err)
{
        struct statvfs sv;

        if (statvfs(mountpoint, &sv) < 0)
                return ve_error_errno(err, errno, "disk usage of %s", mountpoint);
        usage->used_bytes = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
        /* Not f_blocks: that counts the headroom (see disk.h). */
        usage->total_bytes = usage->used_bytes + (uint64_t)sv.f_bavail * sv.f_frsize;
        usage->inodes_total = sv.f_files;
        usage->inodes_used = sv.f_files - sv.f_ffree;
        return 0;
}
