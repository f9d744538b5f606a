#!/bin/sh
# Time the three ways ve_private_create() can make a private area from a golden
# image, with the same e2fsprogs steps it runs: reflink (FICLONE, cp
# --reflink=always), sparse copy (cp --sparse=always) plus tune2fs -U and
# resize2fs, and mkfs.ext4 -d from the golden image mounted read-only (the
# diskinodes path). Needs root (loop mount) and busybox-static.
#   tests/bench/bench_create_image.sh [DISKSPACE_MIB] [WORKDIR]
set -eu
size_mib=${1:-1024}
work=$(mktemp -d "${2:-/var/tmp}/ved-bench.XXXXXX")
mnt=$work/mnt
cleanup() {
        mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
        rm -rf "$work"
}
trap cleanup EXIT INT TERM
src=$(cd "$(dirname "$0")/../.." && pwd)

now() { date +%s.%N; }
report() { printf '%-34s %8.3f s  (%s allocated)\n' "$1" "$(echo "$3 - $2" | bc)" \
        "$(du -h "$4" | cut -f1)"; }

"$src/templates/busybox/build" "$work/bb.tar.gz"
mkdir "$work/tree" "$mnt"
tar -C "$work/tree" -xzf "$work/bb.tar.gz"
truncate -s 64M "$work/golden.img"
mkfs.ext4 -q -F -b 4096 -I 256 -m 0 -i 16384 -O metadata_csum_seed \
        -E root_owner=0:0,assume_storage_prezeroed=1 -d "$work/tree" "$work/golden.img"
echo "golden image: 64M, $(du -h "$work/golden.img" | cut -f1) allocated; VE: ${size_mib}M"

t0=$(now)
if cp --reflink=always "$work/golden.img" "$work/reflink.img" 2>/dev/null; then
        tune2fs -q -U random "$work/reflink.img" >/dev/null
        truncate -s "${size_mib}M" "$work/reflink.img"
        resize2fs -f "$work/reflink.img" >/dev/null 2>&1
        report "reflink + resize2fs" "$t0" "$(now)" "$work/reflink.img"
else
        echo "reflink                            not supported by $(df --output=fstype "$work" | tail -1)"
fi

t0=$(now)
cp --sparse=always "$work/golden.img" "$work/sparse.img"
tune2fs -U random "$work/sparse.img" >/dev/null 2>&1
truncate -s "${size_mib}M" "$work/sparse.img"
resize2fs "$work/sparse.img" >/dev/null 2>&1
report "sparse copy + resize2fs" "$t0" "$(now)" "$work/sparse.img"

t0=$(now)
mount -o ro,noload,loop "$work/golden.img" "$mnt"
truncate -s "${size_mib}M" "$work/mkfs.img"
mkfs.ext4 -q -F -b 4096 -I 256 -m 0 -N 100000 -O metadata_csum_seed \
        -E root_owner=0:0,assume_storage_prezeroed=1 -d "$mnt" "$work/mkfs.img"
umount "$mnt"
report "mount ro + mkfs.ext4 -d (-N)" "$t0" "$(now)" "$work/mkfs.img"
