/* ve/guest.c: the distribution family of a template name (vzctl's lookup), the
 * marked blocks the host keeps in guest files, the checks of write-only secrets,
 * and the files written into a scratch root (never through its symlinks). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ve/error.h"
#include "ve/guest.h"
#include "ve/mount.h"

static void test_family(void **state)
{
        (void)state;
        assert_string_equal(ve_guest_family("debian-12.0-x86_64"), "debian");
        assert_string_equal(ve_guest_family("debian-12-x86_64"), "debian");
        assert_string_equal(ve_guest_family("debian-12"), "debian");
        assert_string_equal(ve_guest_family("debian"), "debian");
        assert_string_equal(ve_guest_family("debian-11-x86_64-minimal"), "debian");
        assert_string_equal(ve_guest_family("ubuntu-22.04-x86_64"), "debian");
        assert_string_equal(ve_guest_family("busybox"), "default");
        assert_string_equal(ve_guest_family("centos-7-x86_64"), "default");
        /* Only whole parts count: "debianish" is not debian. */
        assert_string_equal(ve_guest_family("debianish-1"), "default");
        assert_string_equal(ve_guest_family("my-debian"), "default");
        assert_string_equal(ve_guest_family(""), "default");
        assert_string_equal(ve_guest_family(NULL), "default");
}

static void test_block_add_replace_remove(void **state)
{
        char *a, *b, *c, *d;

        (void)state;
        a = ve_guest_edit_block("mine\n", "dns", "nameserver 1.1.1.1\n", true);
        assert_string_equal(a, "# BEGIN ved dns\nnameserver 1.1.1.1\n# END ved dns\nmine\n");
        /* Replaced where it is; the customer's lines around it stay. */
        b = ve_guest_edit_block("top\n# BEGIN ved dns\nold\n# END ved dns\nbottom\n", "dns", "new",
                                true);
        assert_string_equal(b, "top\n# BEGIN ved dns\nnew\n# END ved dns\nbottom\n");
        c = ve_guest_edit_block(b, "dns", NULL, true);
        assert_string_equal(c, "top\nbottom\n");
        /* Appended after a last line without its newline. */
        d = ve_guest_edit_block("x", "hostname", "127.0.1.1 h\n", false);
        assert_string_equal(d, "x\n# BEGIN ved hostname\n127.0.1.1 h\n# END ved hostname\n");
        free(a);
        free(b);
        free(c);
        free(d);
        /* Removing a block that is not there changes nothing, not even a last
         * line without its newline (found by fuzz_guest_block). */
        a = ve_guest_edit_block("x", "dns", NULL, false);
        assert_string_equal(a, "x");
        free(a);
        /* A guest's copies of the block go: one edit leaves one block (or none),
         * where the first was, so the next edit changes nothing. */
        a = ve_guest_edit_block("a\n# BEGIN ved dns\nold\n# END ved dns\nb\n"
                                "# BEGIN ved dns\nolder\n# END ved dns\nc\n",
                                "dns", "new\n", true);
        assert_string_equal(a, "a\n# BEGIN ved dns\nnew\n# END ved dns\nb\nc\n");
        b = ve_guest_edit_block(a, "dns", NULL, true);
        assert_string_equal(b, "a\nb\nc\n");
        free(a);
        free(b);
}

static void test_block_other_tags_kept(void **state)
{
        char *a;

        (void)state;
        a = ve_guest_edit_block("# BEGIN ved a\n1\n# END ved a\n", "b", "2\n", false);
        assert_string_equal(a, "# BEGIN ved a\n1\n# END ved a\n# BEGIN ved b\n2\n# END ved b\n");
        free(a);
        /* A block whose end a guest removed: its BEGIN line goes, the lines
         * after it (maybe the customer's) stay. */
        a = ve_guest_edit_block("keep\n# BEGIN ved a\nstale\nmine\n", "a", "fresh\n", false);
        assert_string_equal(a, "keep\n# BEGIN ved a\nfresh\n# END ved a\nstale\nmine\n");
        free(a);
}

static void test_ssh_keys(void **state)
{
        struct ve_error err = { 0 };

        (void)state;
        assert_int_equal(ve_guest_check_ssh_keys("ssh-ed25519 AAAAC3Nz user@h", &err), 0);
        assert_int_equal(
            ve_guest_check_ssh_keys("ssh-rsa AAAA a\n# c\necdsa-sha2-nistp256 AAAA b\n", &err), 0);
        assert_int_equal(
            ve_guest_check_ssh_keys("from=\"10.0.0.1\" ssh-ed25519 AAAAC3Nz user@h", &err), 0);
        assert_int_equal(ve_guest_check_ssh_keys("garbage", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_guest_check_ssh_keys("", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_guest_check_ssh_keys("ssh-ed25519 AAAA\r\n", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_guest_check_ssh_keys("ssh-ed25519 AAAA\n# END ved ssh-key\n", &err),
                         -VE_EINVAL_INPUT);
        ve_error_clear(&err);
}

static void test_password(void **state)
{
        struct ve_error err = { 0 };
        char *user = NULL, *hash = NULL;

        (void)state;
        assert_int_equal(ve_guest_hash_password("root:s3cret", &user, &hash, &err), 0);
        assert_string_equal(user, "root");
        assert_true(strncmp(hash, "$y$", 3) == 0 || strncmp(hash, "$6$", 3) == 0);
        assert_null(strstr(hash, "s3cret"));
        free(user);
        free(hash);
        assert_int_equal(ve_guest_hash_password("nocolon", &user, &hash, &err), -VE_EINVAL_INPUT);
        /* The message never repeats the password. */
        assert_null(strstr(err.message, "nocolon"));
        ve_error_clear(&err);
        assert_int_equal(ve_guest_hash_password("Root:x", &user, &hash, &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_guest_hash_password("root:", &user, &hash, &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_guest_hash_password("root:a\nb", &user, &hash, &err), -VE_EINVAL_INPUT);
        assert_null(user);
        ve_error_clear(&err);
}

static char *slurp(const char *path)
{
        static char buf[4096];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

        if (fd >= 0)
                close(fd);
        buf[n > 0 ? n : 0] = '\0';
        return buf;
}

/* A scratch root whose /etc/resolv.conf and /etc/hostname are symlinks out of it:
 * the host's files stay as they are, the links are replaced by files. */
static void test_apply_never_follows(void **state)
{
        char tmpl[] = "/tmp/ved-guest-XXXXXX", path[256], outside[256];
        const char *ns[] = { "192.0.2.1" };
        struct ve_guest_config c = { .family = "debian",
                                     .hostname = "h.example",
                                     .set_dns = true,
                                     .nameservers = ns,
                                     .n_nameservers = 1 };
        struct ve_error err = { 0 };
        char *root = mkdtemp(tmpl);
        struct stat st;

        (void)state;
        assert_non_null(root);
        snprintf(path, sizeof(path), "%s/etc", root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(outside, sizeof(outside), "%s.outside", root);
        {
                FILE *f = fopen(outside, "w");

                assert_non_null(f);
                fputs("host file\n", f);
                fclose(f);
        }
        snprintf(path, sizeof(path), "%s/etc/resolv.conf", root);
        assert_int_equal(symlink("../../../../../../../../tmp/../..//etc/passwd", path), 0);
        snprintf(path, sizeof(path), "%s/etc/hostname", root);
        assert_int_equal(symlink(outside, path), 0);
        assert_int_equal(ve_guest_apply(root, &c, &err), 0);
        assert_string_equal(slurp(outside), "host file\n");
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_string_equal(slurp(path), "h.example\n");
        snprintf(path, sizeof(path), "%s/etc/resolv.conf", root);
        assert_string_equal(slurp(path), "# BEGIN ved dns\nnameserver 192.0.2.1\n# END ved dns\n");
        /* A guest without /etc/hosts keeps localhost. */
        snprintf(path, sizeof(path), "%s/etc/hosts", root);
        assert_string_equal(slurp(path), "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                         "ip6-loopback\n# BEGIN ved hostname\n127.0.1.1\th.example "
                                         "h\n# END ved hostname\n");
        unlink(outside);
        assert_int_equal(ve_rmtree(root, &err), 0);
}

/* A guest's /etc/hosts that is a FIFO, or an /etc/resolv.conf over the size ved
 * edits: a start (skipped given) leaves them and names them; a change asked for
 * (no skipped) fails, saying which. */
static void test_apply_skips_unusable_files(void **state)
{
        char tmpl[] = "/tmp/ved-guest-XXXXXX", path[256], skipped[512];
        const char *ns[] = { "192.0.2.1" };
        struct ve_guest_config c = { .family = "debian",
                                     .hostname = "h.example",
                                     .set_dns = true,
                                     .nameservers = ns,
                                     .n_nameservers = 1 };
        struct ve_error err = { 0 };
        char *root = mkdtemp(tmpl);
        struct stat st;

        (void)state;
        assert_non_null(root);
        snprintf(path, sizeof(path), "%s/etc", root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/etc/hosts", root);
        assert_int_equal(mkfifo(path, 0644), 0);
        snprintf(path, sizeof(path), "%s/etc/resolv.conf", root);
        {
                FILE *f = fopen(path, "w");

                assert_non_null(f);
                fclose(f);
        }
        assert_int_equal(truncate(path, VE_GUEST_FILE_MAX + 1), 0);
        assert_int_not_equal(ve_guest_apply(root, &c, &err), 0);
        assert_non_null(strstr(err.message, "/etc/hosts in the VE is not a regular file"));
        ve_error_clear(&err);
        c.skipped = skipped;
        c.skipped_len = sizeof(skipped);
        assert_int_equal(ve_guest_apply(root, &c, &err), 0);
        assert_non_null(strstr(skipped, "/etc/hosts in the VE is not a regular file"));
        assert_non_null(strstr(skipped, "/etc/resolv.conf in the VE is larger than"));
        /* The hostname itself was written; the two files are as they were. */
        snprintf(path, sizeof(path), "%s/etc/hostname", root);
        assert_string_equal(slurp(path), "h.example\n");
        snprintf(path, sizeof(path), "%s/etc/hosts", root);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISFIFO(st.st_mode));
        snprintf(path, sizeof(path), "%s/etc/resolv.conf", root);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, VE_GUEST_FILE_MAX + 1);
        assert_int_equal(ve_rmtree(root, &err), 0);
}

/* Debian's network file is written where ifupdown is (/etc/network); a guest
 * without it (Ubuntu with netplan, a minimal tree) starts without one, and
 * /etc/network is not made for it. */
static void test_net_debian_only_with_ifupdown(void **state)
{
        char tmpl[] = "/tmp/ved-guest-XXXXXX", path[256];
        const char *addrs[] = { "192.0.2.7" };
        struct ve_guest_config c = {
                .family = "debian", .set_net = true, .addrs = addrs, .n_addrs = 1
        };
        struct ve_error err = { 0 };
        char *root = mkdtemp(tmpl);
        struct stat st;

        (void)state;
        assert_non_null(root);
        snprintf(path, sizeof(path), "%s/etc", root);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(ve_guest_apply(root, &c, &err), 0);
        snprintf(path, sizeof(path), "%s/etc/network", root);
        assert_int_equal(lstat(path, &st), -1);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(ve_guest_apply(root, &c, &err), 0);
        snprintf(path, sizeof(path), "%s/etc/network/interfaces", root);
        assert_non_null(strstr(slurp(path), "iface eth0 inet manual"));
        assert_non_null(strstr(slurp(path), "192.0.2.7/32"));
        assert_non_null(strstr(slurp(path), "(routed:"));
        /* Bridged, on an interface of another name: that name, no /32. */
        c.bridged = true;
        c.ifname = "net0";
        assert_int_equal(ve_guest_apply(root, &c, &err), 0);
        assert_non_null(strstr(slurp(path), "iface net0 inet manual\niface net0 inet6 manual\n"));
        assert_non_null(strstr(slurp(path), "(bridged:"));
        assert_null(strstr(slurp(path), "/32"));
        assert_null(strstr(slurp(path), "eth0"));
        c.bridged = false;
        c.ifname = NULL;
        /* A file the guest put there is refused, not taken for a missing one. */
        assert_int_equal(ve_rmtree(root, &err), 0);
        assert_int_equal(mkdir(root, 0700), 0);
        snprintf(path, sizeof(path), "%s/etc", root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/etc/network", root);
        assert_int_equal(mknod(path, S_IFREG | 0644, 0), 0);
        assert_int_not_equal(ve_guest_apply(root, &c, &err), 0);
        assert_non_null(strstr(err.message, "/etc/network"));
        ve_error_clear(&err);
        assert_int_equal(ve_rmtree(root, &err), 0);
}

/* A file that already says what the host would write is left alone (same
 * inode); one that says something else is replaced. */
static void test_write_file_only_when_changed(void **state)
{
        char tmpl[] = "/tmp/ved-guest-XXXXXX", path[256];
        struct ve_error err = { 0 };
        char *root = mkdtemp(tmpl);
        struct stat st1, st2;

        (void)state;
        assert_non_null(root);
        snprintf(path, sizeof(path), "%s/etc", root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/etc/hostname", root);
        assert_int_equal(ve_guest_set_hostname(root, "a.example", &err), 0);
        assert_int_equal(stat(path, &st1), 0);
        assert_int_equal(ve_guest_set_hostname(root, "a.example", &err), 0);
        assert_int_equal(stat(path, &st2), 0);
        assert_int_equal(st1.st_ino, st2.st_ino);
        assert_int_equal(ve_guest_set_hostname(root, "b.example", &err), 0);
        assert_int_equal(stat(path, &st2), 0);
        assert_int_not_equal(st1.st_ino, st2.st_ino);
        assert_string_equal(slurp(path), "b.example\n");
        assert_int_equal(ve_rmtree(root, &err), 0);
}

/* A stopped VE's files (sync_once): all written, each in place of its temporary
 * file, with one syncfs at the end; a later live write works as before. */
/* sync_once (a stopped VE) and no_sync (a start) write the same files. */
static void apply_deferred(bool no_sync)
{
        char tmpl[] = "/tmp/ved-guest-XXXXXX", path[256];
        struct ve_guest_config c = { .hostname = "s.example",
                                     .machine_id = true,
                                     .sync_once = !no_sync,
                                     .no_sync = no_sync };
        struct ve_error err = { 0 };
        char *root = mkdtemp(tmpl), *id;
        struct dirent *e;
        DIR *dir;

        assert_non_null(root);
        snprintf(path, sizeof(path), "%s/etc", root);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(ve_guest_apply(root, &c, &err), 0);
        snprintf(path, sizeof(path), "%s/etc/hostname", root);
        assert_string_equal(slurp(path), "s.example\n");
        snprintf(path, sizeof(path), "%s/etc/hosts", root);
        assert_non_null(strstr(slurp(path), "s.example"));
        snprintf(path, sizeof(path), "%s/etc/machine-id", root);
        id = slurp(path);
        assert_int_equal(strlen(id), 33);
        assert_int_equal(strspn(id, "0123456789abcdef"), 32);
        snprintf(path, sizeof(path), "%s/etc", root);
        dir = opendir(path);
        assert_non_null(dir);
        while ((e = readdir(dir)) != NULL)
                assert_null(strstr(e->d_name, "ved-tmp"));
        closedir(dir);
        assert_int_equal(ve_guest_set_hostname(root, "t.example", &err), 0);
        snprintf(path, sizeof(path), "%s/etc/hostname", root);
        assert_string_equal(slurp(path), "t.example\n");
        assert_int_equal(ve_rmtree(root, &err), 0);
}

static void test_apply_sync_once(void **state)
{
        (void)state;
        apply_deferred(false);
        apply_deferred(true);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_family),
                cmocka_unit_test(test_block_add_replace_remove),
                cmocka_unit_test(test_block_other_tags_kept),
                cmocka_unit_test(test_ssh_keys),
                cmocka_unit_test(test_password),
                cmocka_unit_test(test_apply_never_follows),
                cmocka_unit_test(test_apply_skips_unusable_files),
                cmocka_unit_test(test_net_debian_only_with_ifupdown),
                cmocka_unit_test(test_write_file_only_when_changed),
                cmocka_unit_test(test_apply_sync_once),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
