/* The devices a VE may open: DESIGN.md's allow-list, enforced by the devices
 * controller on cgroup v1 and by a BPF_PROG_TYPE_CGROUP_DEVICE program on v2.
 *
 * In a user namespace the VE cannot mknod a device, but the kernel would let it
 * open one that exists (a node on the private area, or under a mount it can
 * remount with "dev"): this is the wall that makes every device but the
 * allow-listed ones useless. The BPF program is written by hand as an instruction
 * array, so no libbpf is needed. */
#include "quota/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "ve/cleanup.h"

#define ANY_MINOR (-1)

/* Character devices only: null, zero, full, random, urandom, tty, console,
 * ptmx, and every pty slave (the VE's devpts and its console, a host pty). */
static const struct {
        int major, minor;
} allowed[] = {
        { 1, 3 }, { 1, 5 }, { 1, 7 }, { 1, 8 },           { 1, 9 },
        { 5, 0 }, { 5, 1 }, { 5, 2 }, { 136, ANY_MINOR },
};
#define N_ALLOWED (sizeof(allowed) / sizeof(allowed[0]))

/* --- cgroup v1: devices.deny / devices.allow --- */

int quota_cg_devices_v1(const char *dir, struct ve_error *err)
{
        char path[PATH_MAX], rule[64];
        int ret;

        /* "a" empties the cgroup's list and makes deny the default. */
        snprintf(path, sizeof(path), "%s/devices.deny", dir);
        ret = quota_cg_write(path, "a", err);
        if (ret < 0)
                return ret;
        snprintf(path, sizeof(path), "%s/devices.allow", dir);
        for (size_t i = 0; i < N_ALLOWED; i++) {
                if (allowed[i].minor == ANY_MINOR)
                        snprintf(rule, sizeof(rule), "c %d:* rwm", allowed[i].major);
                else
                        snprintf(rule, sizeof(rule), "c %d:%d rwm", allowed[i].major,
                                 allowed[i].minor);
                ret = quota_cg_write(path, rule, err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

/* --- cgroup v2: a device program --- */

#define INSN(c, d, s, o, i)                                                                        \
        ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(dst, src, off)   INSN(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define AND_IMM(dst, imm)      INSN(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm)
#define MOV_IMM(dst, imm)      INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm, off) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
#define EXIT()                 INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define MAX_INSNS              (6 + 4 * N_ALLOWED + 2)

/* r1 is struct bpf_cgroup_dev_ctx: access_type (access << 16 | type), major,
 * minor. Returns 1 to allow, 0 to deny (the open or mknod gets EPERM). */
static size_t build_prog(struct bpf_insn *p)
{
        size_t n = 0, rules = 0;

        for (size_t i = 0; i < N_ALLOWED; i++)
                rules += allowed[i].minor == ANY_MINOR ? 3 : 4;
        p[n++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
        p[n++] = AND_IMM(BPF_REG_2, 0xffff);
        p[n++] = LDX_W(BPF_REG_3, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
        p[n++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));
        p[n++] = JNE_IMM(BPF_REG_2, BPF_DEVCG_DEV_CHAR, (short)rules);
        for (size_t i = 0; i < N_ALLOWED; i++) {
                bool any = allowed[i].minor == ANY_MINOR;

                p[n++] = JNE_IMM(BPF_REG_3, allowed[i].major, any ? 2 : 3);
                if (!any)
                        p[n++] = JNE_IMM(BPF_REG_4, allowed[i].minor, 2);
                p[n++] = MOV_IMM(BPF_REG_0, 1);
                p[n++] = EXIT();
        }
        p[n++] = MOV_IMM(BPF_REG_0, 0);
        p[n++] = EXIT();
        return n;
}

static int bpf_call(int cmd, union bpf_attr *attr)
{
        return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int load_prog(struct ve_error *err)
{
        static char log[4096];
        struct bpf_insn insns[MAX_INSNS];
        union bpf_attr attr;
        int fd;

        memset(&attr, 0, sizeof(attr));
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.insns = (uint64_t)(uintptr_t)insns;
        attr.insn_cnt = (uint32_t)build_prog(insns);
        attr.license = (uint64_t)(uintptr_t) "GPL";
        fd = bpf_call(BPF_PROG_LOAD, &attr);
        if (fd >= 0 || errno != EACCES)
                return fd < 0 ? ve_error_errno(err, errno, "load the device program") : fd;
        /* Rejected by the verifier: load again for its log (not thread-safe, but
         * only reached with a broken program). */
        attr.log_buf = (uint64_t)(uintptr_t)log;
        attr.log_size = sizeof(log);
        attr.log_level = 1;
        fd = bpf_call(BPF_PROG_LOAD, &attr);
        if (fd >= 0)
                return fd;
        return ve_error_errno(err, EACCES, "load the device program: %.300s", log);
}

/* Attached without BPF_F_ALLOW_OVERRIDE or BPF_F_ALLOW_MULTI: nothing below the
 * VE's cgroup can attach a program of its own, and attaching again (a restart)
 * replaces ours. The cgroup keeps the program once its fd is closed. */
int quota_cg_devices_bpf(const char *dir, struct ve_error *err)
{
        _cleanup_close_ int cgfd = -EBADF, prog = -EBADF;
        union bpf_attr attr;

        cgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgfd < 0)
                return ve_error_errno(err, errno, "open cgroup %s", dir);
        prog = load_prog(err);
        if (prog < 0)
                return prog;
        memset(&attr, 0, sizeof(attr));
        attr.target_fd = (uint32_t)cgfd;
        attr.attach_bpf_fd = (uint32_t)prog;
        attr.attach_type = BPF_CGROUP_DEVICE;
        if (bpf_call(BPF_PROG_ATTACH, &attr) < 0)
                return ve_error_errno(err, errno, "attach the device program to %s", dir);
        return 0;
}
