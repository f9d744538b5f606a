/* ve/statfs_notify.c against the real kernel: a child under the statfs
 * notification filter (ve_seccomp_load_notify()) makes statfs and fstatfs calls,
 * good and hostile, while the test answers them with ve_statfs_notify_serve().
 * The child's root is the host's, an ext4 here, so "/" gets the VE answer
 * (Size = Used + Avail) and /proc the kernel's own. Needs root; skips otherwise. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <arpa/inet.h>
#include <pcap/bpf.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ve/seccomp.h"
#include "ve/statfs_notify.h"

enum {
        ROOT,       /* statfs("/") */
        FD,         /* fstatfs(open("/etc")) */
        RELATIVE,   /* statfs("etc") from / */
        PROC,       /* statfs("/proc"): not ours */
        MISSING,    /* statfs("/nonexistent-ve-test") */
        BAD_PATH,   /* statfs((char *)8, ...) */
        BAD_BUF,    /* statfs("/", (void *)8) */
        BAD_FD,     /* fstatfs(-1) */
        CLOSED_FD,  /* fstatfs(4000) */
        LONG_PATH,  /* a path with no NUL within PATH_MAX */
        DOTDOT,     /* statfs("../../etc") from /tmp: left to the kernel */
        USER_DIR,   /* as nobody: statfs of a root-only directory itself */
        USER_FILE,  /* as nobody: statfs of a file inside it */
        GRANDCHILD, /* statfs("/") in a child of the filtered process */
        /* The i386 table (int $0x80), as a 32-bit guest's df calls it. */
        I386_STATFS64,  /* statfs64("/", 84, buf) */
        I386_FSTATFS64, /* fstatfs64(open("/etc"), 84, buf) */
        I386_STATFS,    /* statfs("/", buf): 32-bit fields */
        I386_FSTATFS,   /* fstatfs(open("/etc"), buf) */
        I386_BAD_SIZE,  /* statfs64("/", 88, buf): the kernel's EINVAL */
        I386_PROC,      /* statfs64("/proc", 84, buf): not ours */
        I386_BAD_BUF,   /* statfs64("/", 84, (void *)8) */
        NCASES,
};

struct result {
        int ret, err;
        struct statfs sfs;
        unsigned char raw[96]; /* an i386 call's answer, as the kernel lays it out */
};

/* Fields of an i386 answer, read at the kernel ABI's offsets (the oracle's own,
 * not ve_statfs_notify.h's structs): struct statfs64 (packed to 4) and struct
 * statfs of 32-bit fields. */
enum {
        W_TYPE = 0,
        W_BSIZE = 4,
        W_BLOCKS = 8,
        W_BFREE = 16,
        W_BAVAIL = 24,
        W_FILES = 32,
        W_FFREE = 40,
        W_FSID = 48,
        W_NAMELEN = 56,
        W_FRSIZE = 60,
        W_FLAGS = 64,
        W_SIZE = 84,
        N_TYPE = 0,
        N_BSIZE = 4,
        N_BLOCKS = 8,
        N_BFREE = 12,
        N_BAVAIL = 16,
        N_FILES = 20,
        N_FFREE = 24,
        N_FSID = 28,
        N_NAMELEN = 36,
        N_FRSIZE = 40,
        N_FLAGS = 44,
        N_SIZE = 64,
};

static uint64_t u32_at(const unsigned char *raw, size_t off)
{
        uint32_t v;

        memcpy(&v, raw + off, sizeof(v));
        return v;
}

static uint64_t u64_at(const unsigned char *raw, size_t off)
{
        uint64_t v;

        memcpy(&v, raw + off, sizeof(v));
        return v;
}

static bool have_i386; /* the kernel runs int $0x80 (IA32 emulation) */

static struct result *results;
static char private_dir[64];

static void record(int i, int ret, const struct statfs *sfs)
{
        results[i].ret = ret;
        results[i].err = ret < 0 ? errno : 0;
        if (sfs != NULL)
                results[i].sfs = *sfs;
}

/* A call of the i386 table from this 64-bit process; -errno on failure. The
 * kernel zeroes r8-r15 on the way back. */
static int int80(long nr, long a, long b, long c)
{
        long ret;

        __asm__ volatile("int $0x80"
                         : "=a"(ret)
                         : "a"(nr), "b"(a), "c"(b), "d"(c)
                         : "memory", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15");
        return (int)ret;
}

static void record_i386(int i, int ret, const void *buf, size_t len)
{
        results[i].ret = ret < 0 ? -1 : ret;
        results[i].err = ret < 0 ? -ret : 0;
        if (ret == 0)
                memcpy(results[i].raw, buf, len);
}

/* Pointers below 4 GiB, which 32-bit arguments can carry. */
static void i386_calls(void)
{
        char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        char *buf = low + 256;
        int fd;

        if (low == MAP_FAILED)
                _exit(4);
        strcpy(low, "/");
        strcpy(low + 16, "/proc");
        memset(buf, 0, 128);
        record_i386(I386_STATFS64, int80(268, (long)low, 84, (long)buf), buf, 84);
        fd = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        memset(buf, 0, 128);
        record_i386(I386_FSTATFS64, int80(269, fd, 84, (long)buf), buf, 84);
        memset(buf, 0, 128);
        record_i386(I386_STATFS, int80(99, (long)low, (long)buf, 0), buf, 64);
        memset(buf, 0, 128);
        record_i386(I386_FSTATFS, int80(100, fd, (long)buf, 0), buf, 64);
        close(fd);
        record_i386(I386_BAD_SIZE, int80(268, (long)low, 88, (long)buf), buf, 88);
        memset(buf, 0, 128);
        record_i386(I386_PROC, int80(268, (long)(low + 16), 84, (long)buf), buf, 84);
        record_i386(I386_BAD_BUF, int80(268, (long)low, 84, 8), buf, 0);
        munmap(low, 4096);
}

static void as_nobody(void)
{
        struct statfs sfs;
        char path[PATH_MAX];

        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
                _exit(2);
        record(USER_DIR, statfs(private_dir, &sfs), &sfs);
        snprintf(path, sizeof(path), "%s/file", private_dir);
        record(USER_FILE, statfs(path, &sfs), NULL);
        _exit(0);
}

static void run_in_child(int sock)
{
        static char long_path[PATH_MAX + 64];
        struct ve_child_err e = { 0 };
        struct statfs sfs;
        pid_t pid;
        int fd;

        if (ve_seccomp_load_notify(sock, 7, -1, &e) < 0)
                _exit(3);
        close(sock);
        record(ROOT, statfs("/", &sfs), &sfs);
        fd = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        record(FD, fstatfs(fd, &sfs), &sfs);
        close(fd);
        if (chdir("/") == 0)
                record(RELATIVE, statfs("etc", &sfs), &sfs);
        record(PROC, statfs("/proc", &sfs), &sfs);
        record(MISSING, statfs("/nonexistent-ve-test", &sfs), NULL);
        record(BAD_PATH, statfs((const char *)8, &sfs), NULL);
        record(BAD_BUF, statfs("/", (struct statfs *)8), NULL);
        record(BAD_FD, fstatfs(-1, &sfs), NULL);
        record(CLOSED_FD, fstatfs(4000, &sfs), NULL);
        memset(long_path, 'a', sizeof(long_path));
        long_path[0] = '/';
        record(LONG_PATH, statfs(long_path, &sfs), NULL);
        if (chdir("/tmp") == 0)
                record(DOTDOT, statfs("../../etc", &sfs), &sfs);
        pid = fork();
        if (pid == 0)
                as_nobody();
        waitpid(pid, NULL, 0);
        pid = fork();
        if (pid == 0) {
                record(GRANDCHILD, statfs("/", &sfs), &sfs);
                _exit(0);
        }
        waitpid(pid, NULL, 0);
        if (have_i386)
                i386_calls();
        _exit(0);
}

static int recv_fd(int sock)
{
        struct ve_statfsd_msg m;
        int fds[VE_STATFSD_FDS];

        assert_int_equal(ve_statfsd_recv(sock, &m, fds), 1);
        assert_int_equal(m.op, VE_STATFSD_ADD);
        assert_int_equal(m.ctid, 7);
        assert_int_equal(fds[1], -1);
        return fds[0];
}

/* Answer the child's calls until its filter has no process left. */
static void serve(int listener)
{
        for (;;) {
                struct pollfd p = { .fd = listener, .events = POLLIN };

                assert_int_equal(poll(&p, 1, 10000), 1);
                if (p.revents & POLLIN)
                        assert_int_equal(ve_statfs_notify_serve(listener, 101), 0);
                else
                        break;
        }
}

static int setup(void **state)
{
        struct ve_error err = { 0 };
        char file[PATH_MAX];
        int fd;

        (void)state;
        results = mmap(NULL, sizeof(*results) * NCASES, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(results != MAP_FAILED);
        snprintf(private_dir, sizeof(private_dir), "/tmp/ve-statfs-XXXXXX");
        assert_non_null(mkdtemp(private_dir));
        snprintf(file, sizeof(file), "%s/file", private_dir);
        fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(ve_seccomp_prepare(&err), 0);
        return 0;
}

static int teardown(void **state)
{
        char file[PATH_MAX];

        (void)state;
        snprintf(file, sizeof(file), "%s/file", private_dir);
        unlink(file);
        rmdir(private_dir);
        munmap(results, sizeof(*results) * NCASES);
        return 0;
}

/* Where an i386 layout keeps each field, and how wide its counts are. */
struct layout_offsets {
        size_t type, bsize, blocks, bfree, bavail, files, ffree, fsid, namelen, frsize, flags;
        size_t size;
        bool wide;
};

static const struct layout_offsets offsets64 = { W_TYPE,  W_BSIZE, W_BLOCKS, W_BFREE,   W_BAVAIL,
                                                 W_FILES, W_FFREE, W_FSID,   W_NAMELEN, W_FRSIZE,
                                                 W_FLAGS, W_SIZE,  true };
static const struct layout_offsets offsets32 = { N_TYPE,  N_BSIZE, N_BLOCKS, N_BFREE,   N_BAVAIL,
                                                 N_FILES, N_FFREE, N_FSID,   N_NAMELEN, N_FRSIZE,
                                                 N_FLAGS, N_SIZE,  false };

static uint64_t count_at(const unsigned char *raw, size_t off, const struct layout_offsets *l)
{
        return l->wide ? u64_at(raw, off) : u32_at(raw, off);
}

/* sfs encoded in layout: each field where the kernel ABI puts it, spare zeroed. */
static void check_layout(const struct statfs *sfs, enum ve_statfs_layout layout,
                         const struct layout_offsets *l)
{
        unsigned char out[sizeof(struct statfs)];

        memset(out, 0xaa, sizeof(out));
        assert_int_equal(ve_statfs_encode(sfs, layout, out), l->size);
        assert_int_equal(u32_at(out, l->type), sfs->f_type);
        assert_int_equal(u32_at(out, l->bsize), sfs->f_bsize);
        assert_int_equal(count_at(out, l->blocks, l), sfs->f_blocks);
        assert_int_equal(count_at(out, l->bfree, l), sfs->f_bfree);
        assert_int_equal(count_at(out, l->bavail, l), sfs->f_bavail);
        assert_int_equal(count_at(out, l->files, l), sfs->f_files);
        assert_int_equal(count_at(out, l->ffree, l), sfs->f_ffree);
        assert_memory_equal(out + l->fsid, &sfs->f_fsid, 8);
        assert_int_equal(u32_at(out, l->namelen), sfs->f_namelen);
        assert_int_equal(u32_at(out, l->frsize), sfs->f_frsize);
        assert_int_equal(u32_at(out, l->flags), sfs->f_flags);
        assert_int_equal(u64_at(out, l->flags + 4) | u64_at(out, l->flags + 12), 0); /* spare */
        assert_int_equal(l->flags + 20, l->size);
}

/* Which notified calls are ours, by arch and number, as the filter sends them
 * (this kernel runs no i386 calls to test them end to end: see test_calls). */
static void test_classify(void **state)
{
        struct seccomp_notif req;
        enum ve_statfs_layout layout;
        uint64_t buf;
        bool by_fd;

        (void)state;
#define CALL(a, n, a0, a1, a2)                                                                     \
        (memset(&req, 0, sizeof(req)), req.data.arch = (a), req.data.nr = (n),                     \
         req.data.args[0] = (a0), req.data.args[1] = (a1), req.data.args[2] = (a2), buf = 0,       \
         ve_statfs_classify(&req, &by_fd, &layout, &buf))
        assert_int_equal(CALL(AUDIT_ARCH_X86_64, __NR_statfs, 0x1000, 0x2000, 0), 0);
        assert_false(by_fd);
        assert_int_equal(layout, VE_STATFS_NATIVE);
        assert_int_equal(buf, 0x2000);
        assert_int_equal(CALL(AUDIT_ARCH_X86_64, __NR_fstatfs, 3, 0x2000, 0), 0);
        assert_true(by_fd);
        /* x32: x86-64's number with bit 30, x86-64's struct. */
        assert_int_equal(CALL(AUDIT_ARCH_X86_64, __NR_fstatfs | 0x40000000, 3, 0x2000, 0), 0);
        assert_true(by_fd);
        assert_int_equal(layout, VE_STATFS_NATIVE);
        assert_int_equal(CALL(AUDIT_ARCH_X86_64, __NR_getpid, 0, 0, 0), 1);
        /* i386: statfs 99, fstatfs 100, statfs64 268, fstatfs64 269; 32-bit args. */
        assert_int_equal(CALL(AUDIT_ARCH_I386, 99, 0x1000, 0xffffffff00002000ULL, 0), 0);
        assert_false(by_fd);
        assert_int_equal(layout, VE_STATFS_I386);
        assert_int_equal(buf, 0x2000);
        assert_int_equal(CALL(AUDIT_ARCH_I386, 100, 3, 0x2000, 0), 0);
        assert_true(by_fd);
        assert_int_equal(layout, VE_STATFS_I386);
        assert_int_equal(CALL(AUDIT_ARCH_I386, 268, 0x1000, W_SIZE, 0x3000), 0);
        assert_false(by_fd);
        assert_int_equal(layout, VE_STATFS_I386_64);
        assert_int_equal(buf, 0x3000);
        assert_int_equal(CALL(AUDIT_ARCH_I386, 269, 3, W_SIZE, 0x3000), 0);
        assert_true(by_fd);
        assert_int_equal(layout, VE_STATFS_I386_64);
        /* statfs64's size check is the kernel's (EINVAL). */
        assert_int_equal(CALL(AUDIT_ARCH_I386, 268, 0x1000, 88, 0x3000), 1);
        /* i386's 137 is not statfs; another architecture is not ours. */
        assert_int_equal(CALL(AUDIT_ARCH_I386, __NR_statfs, 0x1000, 0x2000, 0), 1);
        assert_int_equal(CALL(AUDIT_ARCH_AARCH64, 43, 0x1000, 0x2000, 0), 1);
#undef CALL
}

/* The notification filter itself (ve/seccomp.c), run by libpcap's classic BPF
 * interpreter on a made-up call: the action it returns. pcap loads words
 * big-endian, seccomp in the CPU's order: each word of seccomp_data is swapped. */
static uint32_t filter_action(const struct sock_fprog *prog, uint32_t arch, int nr)
{
        struct seccomp_data d = { .nr = nr, .arch = arch };
        unsigned char raw[sizeof(d)];

        for (size_t off = 0; off < sizeof(d); off += 4) {
                uint32_t w;

                memcpy(&w, (unsigned char *)&d + off, 4);
                w = htonl(w);
                memcpy(raw + off, &w, 4);
        }
        return bpf_filter((const struct bpf_insn *)prog->filter, raw, sizeof(raw), sizeof(raw)) &
               SECCOMP_RET_ACTION_FULL;
}

/* Which calls the built filter notifies, in each architecture: what test_calls
 * can check for i386 only where the kernel runs 32-bit code. */
static void test_filter_notifies(void **state)
{
        const struct sock_fprog *prog;
        struct ve_error err = { 0 };

        (void)state;
        assert_int_equal(ve_seccomp_prepare(&err), 0);
        prog = ve_seccomp_notify_filter();
        assert_non_null(prog);
#define ACTION(arch, nr) filter_action(prog, arch, nr)
        assert_int_equal(ACTION(AUDIT_ARCH_X86_64, __NR_statfs), SECCOMP_RET_USER_NOTIF);
        assert_int_equal(ACTION(AUDIT_ARCH_X86_64, __NR_fstatfs), SECCOMP_RET_USER_NOTIF);
        assert_int_equal(ACTION(AUDIT_ARCH_X86_64, __NR_getpid), SECCOMP_RET_ALLOW);
        /* x32: x86-64's numbers with bit 30. */
        assert_int_equal(ACTION(AUDIT_ARCH_X86_64, __NR_statfs | 0x40000000),
                         SECCOMP_RET_USER_NOTIF);
        assert_int_equal(ACTION(AUDIT_ARCH_X86_64, __NR_getpid | 0x40000000), SECCOMP_RET_ALLOW);
        /* i386: statfs 99, fstatfs 100, statfs64 268, fstatfs64 269; getpid 20. */
        assert_int_equal(ACTION(AUDIT_ARCH_I386, 99), SECCOMP_RET_USER_NOTIF);
        assert_int_equal(ACTION(AUDIT_ARCH_I386, 100), SECCOMP_RET_USER_NOTIF);
        assert_int_equal(ACTION(AUDIT_ARCH_I386, 268), SECCOMP_RET_USER_NOTIF);
        assert_int_equal(ACTION(AUDIT_ARCH_I386, 269), SECCOMP_RET_USER_NOTIF);
        assert_int_equal(ACTION(AUDIT_ARCH_I386, 20), SECCOMP_RET_ALLOW);
        assert_int_equal(ACTION(AUDIT_ARCH_I386, __NR_statfs), SECCOMP_RET_ALLOW);
        /* Another architecture is the first filter's to refuse. */
        assert_int_equal(ACTION(AUDIT_ARCH_AARCH64, 43), SECCOMP_RET_ALLOW);
#undef ACTION
        ve_error_clear(&err);
}

/* Each layout at the kernel ABI's offsets, and its limits. */
static void test_encode(void **state)
{
        struct statfs sfs = { .f_type = EXT4_SUPER_MAGIC,
                              .f_bsize = 4096,
                              .f_blocks = 1000,
                              .f_bfree = 300,
                              .f_bavail = 200,
                              .f_files = 5000,
                              .f_ffree = 4000,
                              .f_namelen = 255,
                              .f_frsize = 2048,
                              .f_flags = 0x1020 };
        unsigned char out[sizeof(struct statfs)];

        (void)state;
        memcpy(&sfs.f_fsid, (int[2]){ 0x11223344, 0x55667788 }, 8);
        assert_int_equal(ve_statfs_encode(&sfs, VE_STATFS_NATIVE, out), sizeof(sfs));
        assert_memory_equal(out, &sfs, sizeof(sfs));

        check_layout(&sfs, VE_STATFS_I386_64, &offsets64);
        check_layout(&sfs, VE_STATFS_I386, &offsets32);

        /* "No limit" on inodes (-1) fits 32 bits; a real count past them does not. */
        sfs.f_files = sfs.f_ffree = (fsfilcnt_t)-1;
        assert_int_equal(ve_statfs_encode(&sfs, VE_STATFS_I386, out), N_SIZE);
        assert_int_equal(u32_at(out, N_FILES), UINT32_MAX);
        sfs.f_files = 1ULL << 32;
        assert_int_equal(ve_statfs_encode(&sfs, VE_STATFS_I386, out), -EOVERFLOW);
        /* 2^32 blocks: only statfs64 can say it. */
        sfs.f_files = 5000;
        sfs.f_blocks = 1ULL << 32;
        assert_int_equal(ve_statfs_encode(&sfs, VE_STATFS_I386, out), -EOVERFLOW);
        assert_int_equal(ve_statfs_encode(&sfs, VE_STATFS_I386_64, out), W_SIZE);
        assert_int_equal(u64_at(out, W_BLOCKS), 1ULL << 32);
        sfs.f_bsize = 1LL << 32;
        assert_int_equal(ve_statfs_encode(&sfs, VE_STATFS_I386_64, out), -EOVERFLOW);
}

static void test_transform(void **state)
{
        struct statfs sfs = { .f_blocks = 1000, .f_bfree = 900, .f_bavail = 200 };

        (void)state;
        ve_statfs_transform(&sfs);
        /* Used (blocks - free) stays 100; the size is used + available. */
        assert_int_equal(sfs.f_blocks, 300);
        assert_int_equal(sfs.f_bfree, 200);
        assert_int_equal(sfs.f_bavail, 200);
        sfs = (struct statfs){ .f_blocks = 1000, .f_bfree = 200, .f_bavail = 200 };
        ve_statfs_transform(&sfs);
        assert_int_equal(sfs.f_blocks, 1000);
}

static void assert_ve_view(const struct result *r, const struct statfs *host)
{
        assert_int_equal(r->ret, 0);
        assert_int_equal(r->sfs.f_type, EXT4_SUPER_MAGIC);
        /* Host blocks minus what only root and ext4's reserve may take; that part
         * does not move while other processes write. */
        assert_int_equal(r->sfs.f_blocks, host->f_blocks - (host->f_bfree - host->f_bavail));
        assert_int_equal(r->sfs.f_bfree, r->sfs.f_bavail);
}

/* Does int $0x80 work here? A kernel without IA32 emulation kills the caller. */
static bool probe_i386(void)
{
        int status;
        pid_t pid = fork();

        if (pid == 0) {
                /* Not cmocka's handlers: a fault must end this child. */
                signal(SIGSEGV, SIG_DFL);
                signal(SIGBUS, SIG_DFL);
                signal(SIGILL, SIG_DFL);
                _exit(int80(20 /* getpid */, 0, 0, 0) == getpid() ? 0 : 1);
        }
        return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
               WEXITSTATUS(status) == 0;
}

static void assert_ve_view_i386(const struct result *r, const struct statfs *host, bool wide)
{
        const unsigned char *a = r->raw;
        uint64_t blocks = wide ? u64_at(a, W_BLOCKS) : u32_at(a, N_BLOCKS);
        uint64_t bfree = wide ? u64_at(a, W_BFREE) : u32_at(a, N_BFREE);
        uint64_t bavail = wide ? u64_at(a, W_BAVAIL) : u32_at(a, N_BAVAIL);

        assert_int_equal(r->ret, 0);
        assert_int_equal(u32_at(a, wide ? W_TYPE : N_TYPE), EXT4_SUPER_MAGIC);
        assert_int_equal(u32_at(a, wide ? W_BSIZE : N_BSIZE), host->f_bsize);
        assert_int_equal(u32_at(a, wide ? W_NAMELEN : N_NAMELEN), host->f_namelen);
        assert_memory_equal(a + (wide ? W_FSID : N_FSID), &host->f_fsid, 8);
        assert_int_equal(blocks, host->f_blocks - (host->f_bfree - host->f_bavail));
        assert_int_equal(bfree, bavail);
}

static void test_calls(void **state)
{
        struct statfs host;
        int sv[2], listener, status;
        pid_t pid;

        (void)state;
        if (geteuid() != 0)
                skip();
        assert_int_equal(statfs("/", &host), 0);
        if (host.f_type != EXT4_SUPER_MAGIC || host.f_bfree == host.f_bavail)
                skip(); /* nothing to tell the two answers apart */
        have_i386 = probe_i386();
        if (!have_i386)
                fprintf(stderr, "int $0x80 does not run in this kernel (no IA32 emulation): i386 "
                                "calls not tried (test_filter_notifies and test_encode check "
                                "what they would)\n");
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                run_in_child(sv[1]);
        }
        close(sv[1]);
        listener = recv_fd(sv[0]);
        close(sv[0]);
        assert_true(listener >= 0);
        serve(listener);
        close(listener);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        assert_ve_view(&results[ROOT], &host);
        assert_ve_view(&results[FD], &host);
        assert_ve_view(&results[RELATIVE], &host);
        assert_ve_view(&results[GRANDCHILD], &host);
        assert_ve_view(&results[USER_DIR], &host);
        /* Left to the kernel: the real answer. */
        assert_int_equal(results[PROC].ret, 0);
        assert_int_equal(results[PROC].sfs.f_type, PROC_SUPER_MAGIC);
        assert_int_equal(results[DOTDOT].ret, 0);
        assert_int_equal(results[DOTDOT].sfs.f_blocks, host.f_blocks);
        /* Errors as the kernel gives them. */
        assert_int_equal(results[MISSING].err, ENOENT);
        assert_int_equal(results[BAD_PATH].err, EFAULT);
        assert_int_equal(results[BAD_BUF].err, EFAULT);
        assert_int_equal(results[BAD_FD].err, EBADF);
        assert_int_equal(results[CLOSED_FD].err, EBADF);
        assert_int_equal(results[LONG_PATH].err, ENAMETOOLONG);
        /* nobody cannot search the 0700 directory: no answer of ours says
         * whether the file exists. */
        assert_int_equal(results[USER_FILE].err, EACCES);
        if (!have_i386)
                return;
        assert_ve_view_i386(&results[I386_STATFS64], &host, true);
        assert_ve_view_i386(&results[I386_FSTATFS64], &host, true);
        /* 32-bit fields: this host's root fits them (blocks of 4 KiB). */
        if (host.f_blocks <= UINT32_MAX && host.f_files <= UINT32_MAX) {
                assert_ve_view_i386(&results[I386_STATFS], &host, false);
                assert_ve_view_i386(&results[I386_FSTATFS], &host, false);
        }
        assert_int_equal(results[I386_BAD_SIZE].err, EINVAL);
        assert_int_equal(results[I386_PROC].ret, 0);
        assert_int_equal(u32_at(results[I386_PROC].raw, W_TYPE), PROC_SUPER_MAGIC);
        assert_int_equal(results[I386_BAD_BUF].err, EFAULT);
}

/* An ADD_CONSOLE carries four fds in order; a message with more fds than a
 * receiver takes is refused whole, none of its fds kept. */
static void test_messages_with_fds(void **state)
{
        struct ve_statfsd_msg m;
        int sv[2], fds[VE_STATFSD_FDS], got[VE_STATFSD_FDS], more[VE_STATFSD_FDS + 1];
        struct stat a, b;

        (void)state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        for (int i = 0; i < VE_STATFSD_FDS; i++)
                fds[i] = open(i % 2 ? "/dev/null" : "/dev/zero", O_RDONLY | O_CLOEXEC);
        assert_int_equal(ve_statfsd_sendv(sv[0], VE_STATFSD_ADD_CONSOLE, 9, fds, VE_STATFSD_FDS),
                         0);
        assert_int_equal(ve_statfsd_recv(sv[1], &m, got), 1);
        assert_int_equal(m.op, VE_STATFSD_ADD_CONSOLE);
        assert_int_equal(m.ctid, 9);
        for (int i = 0; i < VE_STATFSD_FDS; i++) {
                assert_true(got[i] >= 0);
                assert_int_equal(fstat(fds[i], &a), 0);
                assert_int_equal(fstat(got[i], &b), 0);
                assert_true(a.st_rdev == b.st_rdev);
                close(got[i]);
        }
        /* Two fds: the rest read -1. */
        assert_int_equal(ve_statfsd_sendv(sv[0], VE_STATFSD_ADD_CONSOLE, 9, fds, 2), 0);
        assert_int_equal(ve_statfsd_recv(sv[1], &m, got), 1);
        assert_true(got[0] >= 0 && got[1] >= 0);
        assert_int_equal(got[2], -1);
        assert_int_equal(got[3], -1);
        close(got[0]);
        close(got[1]);
        /* One fd too many can only be sent by hand: the receiver refuses it. */
        memcpy(more, fds, sizeof(fds));
        more[VE_STATFSD_FDS] = fds[0];
        {
                char cbuf[CMSG_SPACE(sizeof(more))] = { 0 };
                struct ve_statfsd_msg out = { .op = VE_STATFSD_ADD_CONSOLE, .ctid = 9 };
                struct iovec iov = { .iov_base = &out, .iov_len = sizeof(out) };
                struct msghdr msg = { .msg_iov = &iov,
                                      .msg_iovlen = 1,
                                      .msg_control = cbuf,
                                      .msg_controllen = sizeof(cbuf) };
                struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(more));
                memcpy(CMSG_DATA(c), more, sizeof(more));
                assert_true(sendmsg(sv[0], &msg, 0) == sizeof(out));
        }
        assert_int_equal(ve_statfsd_recv(sv[1], &m, got), -EBADMSG);
        for (int i = 0; i < VE_STATFSD_FDS; i++)
                assert_int_equal(got[i], -1);
        for (int i = 0; i < VE_STATFSD_FDS; i++)
                close(fds[i]);
        close(sv[0]);
        close(sv[1]);
}

/* console.log grows by appends; past VE_CONSOLE_LOG_MAX what it holds becomes
 * console.log.1 and it starts again, on the same inode (other fds stay on it). */
static void test_console_log_cap(void **state)
{
        char dir[] = "/tmp/test-console-log-XXXXXX", path[64], old[64], buf[4096];
        struct stat st, st1;
        int fd, fd2, in;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/console.log", dir);
        snprintf(old, sizeof(old), "%s/console.log.1", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        fd2 = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(fd2 >= 0);
        assert_int_equal(fstat(fd, &st1), 0);
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(ve_console_log_write(fd, "hello\n", 6), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, 6);
        for (size_t n = 6; n <= VE_CONSOLE_LOG_MAX; n += sizeof(buf))
                assert_int_equal(ve_console_log_write(fd, buf, sizeof(buf)), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(st.st_size > VE_CONSOLE_LOG_MAX);
        assert_int_equal(ve_console_log_write(fd, "again\n", 6), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, 6);
        assert_int_equal(st.st_ino, st1.st_ino);
        /* The old part, from its first line, is console.log.1; no temporary left. */
        assert_int_equal(stat(old, &st), 0);
        assert_true(st.st_size > VE_CONSOLE_LOG_MAX);
        in = open(old, O_RDONLY | O_CLOEXEC);
        assert_true(in >= 0);
        assert_int_equal(read(in, buf, 6), 6);
        assert_memory_equal(buf, "hello\n", 6);
        close(in);
        snprintf(buf, sizeof(buf), "%s/console.log.1.tmp", dir);
        assert_int_equal(access(buf, F_OK), -1);
        /* The other writer (ve-statfsd's fd) appends to the new log. */
        assert_int_equal(ve_console_log_write(fd2, "more\n", 5), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 11);
        close(fd);
        close(fd2);
        unlink(path);
        unlink(old);
        rmdir(dir);
}

/* The console's rate: a burst goes through at once, then the wait is what the
 * rate takes to give a read's worth back. */
static void test_console_bucket(void **state)
{
        struct ve_bucket b = { 0 };
        unsigned wait;

        (void)state;
        assert_int_equal(ve_console_bucket_take(&b, 4096), 0);
        assert_int_equal(ve_console_bucket_take(&b, VE_CONSOLE_BURST - 8192), 0);
        /* 4096 left: a read of 8192 overdraws by 4096, and 8192 take 125 ms. */
        wait = ve_console_bucket_take(&b, 8192);
        assert_true(wait >= 120 && wait <= 130);
        /* Time refills it, never past the burst. */
        b.at_ms -= 60 * 1000;
        assert_int_equal(ve_console_bucket_take(&b, VE_CONSOLE_BURST - 1), 0);
        assert_true(ve_console_bucket_take(&b, 2) > 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_transform),       cmocka_unit_test(test_encode),
                cmocka_unit_test(test_classify),        cmocka_unit_test(test_filter_notifies),
                cmocka_unit_test(test_calls),           cmocka_unit_test(test_messages_with_fds),
                cmocka_unit_test(test_console_log_cap), cmocka_unit_test(test_console_bucket),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
