/* Host-side writes inside a VE's root (hostname, network files, passwords).
 *
 * The VE's root is the guest's: any path in it may be a symlink planted to point
 * at the host. Every path is resolved with openat2(RESOLVE_IN_ROOT), so ".." and
 * absolute symlinks stay inside the root, and files are replaced by renaming a
 * new file over them in their directory, which replaces a symlink rather than
 * writing through it. Files are read with O_NOFOLLOW: a symlink in the place of a
 * file reads as empty (and is then replaced by a regular file).
 *
 * What the host writes into a file the guest also edits sits in a marked block,
 *     # BEGIN ved <tag>
 *     ...
 *     # END ved <tag>
 * replaced in place on every change, so the customer's own lines around it
 * survive. /etc/hostname is the host's whole (one line), and /etc/shadow has no
 * comments: only the user's own line is changed there.
 *
 * Distribution families, chosen from the OS template's name as vzctl chooses its
 * dists/NAME.conf: the whole name, then without its last "-part", and so on, then
 * "default" (debian-12.0-x86_64 -> debian-12.0 -> debian). Families differ in the
 * network configuration: "debian" marks eth0 manual in /etc/network/interfaces so
 * that ifupdown leaves the host's configuration alone; "default" (busybox and
 * anything unknown) writes no network file.
 */
#ifndef VE_GUEST_H
#define VE_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "idmap.h"

/* Bounds on what the API accepts (and this file writes). */
#define VE_GUEST_FILE_MAX   (16 * 1024 * 1024) /* a guest file read to be edited */
#define VE_GUEST_SSHKEY_MAX 16384

/* The guest configuration family of an OS template name: "debian" or "default".
 * Never NULL. */
const char *ve_guest_family(const char *ostemplate);

struct ve_guest_config {
        const char *family;   /* ve_guest_family(); NULL is "default" */
        const char *hostname; /* NULL: leave /etc/hostname and /etc/hosts alone */
        /* DNS: when set_dns, /etc/resolv.conf's block lists these (an "inherit"
         * entry stands for the host's own nameservers); both empty removes it. */
        bool set_dns;
        const char *const *nameservers;
        size_t n_nameservers;
        const char *const *searchdomains;
        size_t n_searchdomains;
        /* Network: when set_net, the family's network file describes eth0 with
         * these addresses ("10.0.0.5", "2001:db8::5"; routed: /32 and /128). */
        bool set_net;
        const char *const *addrs;
        size_t n_addrs;
        const char *ifname; /* the VE's interface; NULL: eth0 */
        bool bridged;       /* on a bridge (netif) rather than routed */
        /* A password: user's /etc/shadow line gets password_hash (crypt(3) form,
         * see ve_guest_hash_password()). NULL: leave. */
        const char *user;
        const char *password_hash;
        /* Root's ~/.ssh/authorized_keys block: these lines. NULL: leave. */
        const char *ssh_keys;
        /* Write a fresh /etc/machine-id when the guest's is missing or empty. */
        bool machine_id;
        /* The VE is not running: its files are made durable by one syncfs at the
         * end rather than two fsyncs each (a running VE's syncfs would also wait
         * for everything the VE itself has written). */
        bool sync_once;
        /* No fsync nor syncfs at all: for a start, which writes every file from the
         * VE's record again (one that says so already is left alone), so that a
         * write a host crash lost is made again at the next start; the VE's own
         * writes are no more durable than that either. Not for secrets (user,
         * password_hash, ssh_keys), written once. */
        bool no_sync;
        /* When set (a start): a file the guest made unusable for editing (not a
         * regular file, larger than VE_GUEST_FILE_MAX) is left alone and named
         * here, "; "-separated, rather than failing: the customer's own
         * /etc/hosts must not keep the VE from booting. Else such a file fails. */
        char *skipped;
        size_t skipped_len;
};

/* Apply c to the VE whose root (the private area, guest ids on disk) is mounted
 * at root. Each part is done in the order of the struct; the first failure stops
 * and says which file. VE_EINVAL_INPUT when the user has no /etc/shadow line. */
int ve_guest_apply(const char *root, const struct ve_guest_config *c, struct ve_error *err);

/* The same on a root that shows the VE's host ids (a layered VE's overlay, seen
 * from the host), as the VE's root: the calling thread runs with map's base ids
 * as its fsuid and fsgid meanwhile (ve_layer_as_ve_root()), and files made anew
 * belong to them. */
int ve_guest_apply_as(const char *root, const struct ve_guest_config *c, const struct ve_idmap *map,
                      struct ve_error *err);

/* Replace file `path` (absolute inside the VE) under the host directory root with
 * content, mode mode, owned by root. The parent directory must exist. */
int ve_guest_write_file(const char *root, const char *path, const char *content, size_t len,
                        mode_t mode, struct ve_error *err);

/* Write /etc/hostname. */
int ve_guest_set_hostname(const char *root, const char *hostname, struct ve_error *err);

/* Put content (lines, each ending in '\n'; NULL or "" removes the block) in the
 * block `tag` of file path, creating the file (mode) when missing. prepend: a new
 * block goes first (resolv.conf's nameservers must come before the guest's),
 * else last. An existing block is replaced where it is; any more blocks of the
 * same tag (a guest's copies of ours) are removed. */
int ve_guest_set_block(const char *root, const char *path, const char *tag, const char *content,
                       mode_t mode, bool prepend, struct ve_error *err);

/* Pure text transformation behind ve_guest_set_block(), for tests: a malloc'd
 * copy of text with the block replaced, added or removed. NULL on ENOMEM. */
char *ve_guest_edit_block(const char *text, const char *tag, const char *content, bool prepend);

/* Pure text transformation behind the password's setting, for tests: a malloc'd
 * copy of an /etc/shadow text with the first line of user given hash and
 * last-change day, its fields from the fourth on kept. NULL with errno ENOENT
 * when user has no line, ENOMEM. */
char *ve_guest_edit_shadow(const char *text, const char *user, const char *hash, long days);

/* Check "USER:PASSWORD" (user a valid login name, password printable, at most
 * 256 bytes) and hash the password with yescrypt (sha512crypt where libcrypt
 * lacks it) and a fresh salt. *user and *hash are malloc'd. The password itself is
 * never copied anywhere else nor put in err. */
int ve_guest_hash_password(const char *userpasswd, char **user, char **hash, struct ve_error *err);

/* Check an authorized_keys text: at most VE_GUEST_SSHKEY_MAX bytes, printable,
 * each non-empty line a public key ("ssh-ed25519 AAAA... comment", with optional
 * options before the type). */
int ve_guest_check_ssh_keys(const char *keys, struct ve_error *err);

/* Set the hostname of the running VE whose init is pid (its UTS namespace), from
 * a short-lived child. */
int ve_guest_sethostname_live(pid_t pid, const char *hostname, struct ve_error *err);

#endif
