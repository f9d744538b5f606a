/* OS templates: a tarball imported once into a golden ext4 image
 * (<templates_dir>/<name>.img) that private areas are cloned from.
 *
 * The tarball is untrusted. It is read with libarchive (tar in any of its
 * dialects, compressed with gzip, bzip2, xz, lzma or zstd, detected from the
 * bytes) and every entry is checked before anything is written: absolute
 * paths, ".." components, device nodes and sockets, hardlinks leaving the tree
 * and entries written through a symlink are refused, failing the whole import
 * with a message naming the entry. FIFOs are allowed (harmless, and some
 * distributions ship one). Symlinks are allowed with any target: they are
 * resolved only inside the VE. Extraction runs in a thread of its own whose
 * root and working directory are the staging tree (unshare(CLONE_FS) and
 * chroot), so even a libarchive bug cannot write outside it; libarchive's
 * SECURE_SYMLINKS, SECURE_NODOTDOT and SECURE_NOABSOLUTEPATHS are on as well.
 *
 * Owners are kept numerically (the guest's uids, not the host's names) and
 * setuid/setgid bits are kept: the tree becomes an unprivileged VE's image, in
 * which uid 0 is an unprivileged host uid. Until then it sits in a 0700
 * staging directory. Extended attributes are kept only in the user.* and
 * security.capability namespaces; file flags (immutable, append-only) are
 * never applied. The staging tree is deleted once the image is made: the
 * image is the template. */
#ifndef VE_TEMPLATE_H
#define VE_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define VE_TEMPLATE_NAME_MAX    128
#define VE_TEMPLATE_MAX_SIZE    (8ULL << 30) /* uncompressed bytes */
#define VE_TEMPLATE_MAX_ENTRIES 1000000ULL

struct ve_template_import {
        const char *templates_dir; /* e.g. <state>/templates; created 0700 if missing */
        const char *source;        /* path of the tarball */
        const char *name;          /* NULL: the file name without .tar.* */
        const char *sha256;        /* NULL, or 64 hex digits the file must hash to */
        uint64_t max_size;         /* 0: VE_TEMPLATE_MAX_SIZE */
        uint64_t max_entries;      /* 0: VE_TEMPLATE_MAX_ENTRIES */
        /* Optional: called as the tarball is read, with bytes read so far and
         * its size, from the extraction thread (not the caller's): it must
         * only hand the figures over (e.g. uv_async_send), never block. */
        void (*progress_cb)(uint64_t done, uint64_t total, void *opaque);
        /* Optional: called once, from the importing thread, when the whole
         * tarball has been read, every entry accepted and the checksum
         * matched: from then on only the host can make the import fail. Same
         * rules as progress_cb. */
        void (*checked_cb)(void *opaque);
        void *opaque;
};

/* The parts of an OpenVZ-style template name, distro-release-arch[-variant]:
 * "debian-12-x86_64" is debian, 12, x86_64; "centos-7-x86_64-minimal" has
 * variant "minimal"; "busybox" is just a distro. Missing parts are "". */
struct ve_template_ident {
        char distro[64];
        char release[64];
        char arch[32];
        char variant[64];
};

struct ve_template_info {
        char name[VE_TEMPLATE_NAME_MAX + 1];
        char distro[64];
        char release[64];
        char arch[32];        /* "" when the name does not say: the host's */
        char sha256[65];      /* of the tarball's bytes, always computed */
        uint64_t tree_bytes;  /* file data extracted */
        uint64_t image_bytes; /* size of <name>.img */
        uint64_t files;       /* entries in the tarball */
};

/* Import req->source as template req->name. On success <templates_dir>/<name>.img
 * exists (written to a temporary name, fsynced, renamed, directory fsynced)
 * and info is filled. Errors: VE_EINVAL_INPUT for a bad name, a checksum
 * mismatch or a refused entry; VE_ETOOLARGE past the size or entry caps;
 * VE_ECONFLICT when the template exists; -errno otherwise. On failure the
 * staging directory and any partial image are removed. */
int ve_template_import(const struct ve_template_import *req, struct ve_template_info *info,
                       struct ve_error *err);

/* Delete <templates_dir>/<name>.img. VEs already created from it are
 * independent copies and are not affected. VE_ENOTFOUND if there is none. */
int ve_template_remove(const char *templates_dir, const char *name, struct ve_error *err);

/* <dir>/<name>.img, the template's golden image. ENAMETOOLONG when it does not
 * fit in len. */
int ve_template_image_path(const char *dir, const char *name, char *path, size_t len,
                           struct ve_error *err);

/* Remove what interrupted imports left in templates_dir: .staging-* trees,
 * .*.img.tmp-* files and .upload-* files. For the daemon's startup, before any
 * import runs. */
int ve_template_cleanup(const char *templates_dir, struct ve_error *err);

/* Split an OpenVZ-style template name into its parts (see struct above).
 * Returns 0, or -EINVAL for an empty name. */
int ve_template_name_parse(const char *name, struct ve_template_ident *out);

/* The full names a name without an architecture stands for on a host_arch
 * host, as vzctl reads --ostemplate centos-7 as centos-7-x86_64: the name with
 * host_arch, then with its other spelling (amd64), inserted after the release
 * ("centos-7-minimal" -> "centos-7-x86_64-minimal"). Writes up to max names
 * into out and returns how many; 0 when the name has an architecture. */
int ve_template_name_candidates(const char *name, const char *host_arch,
                                char out[][VE_TEMPLATE_NAME_MAX + 1], size_t max);

#endif
