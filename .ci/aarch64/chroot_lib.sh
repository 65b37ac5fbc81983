# Shared by build_root.sh and run: mount/unmount the pseudo file systems a chroot needs.
# shellcheck shell=bash

chroot_mount() {
    local root="$1"
    mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/dev/pts" "$root/dev/shm" "$root/tmp"
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mountpoint -q "$root/sys" || mount -t sysfs sysfs "$root/sys"
    mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
    mountpoint -q "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts"
    mountpoint -q "$root/dev/shm" || mount -t tmpfs shm "$root/dev/shm"
    chmod 1777 "$root/tmp"
}

chroot_umount() {
    local root="$1" m
    for m in dev/shm dev/pts dev sys proc; do
        if mountpoint -q "$root/$m" 2>/dev/null; then
            umount "$root/$m" 2>/dev/null || umount -l "$root/$m" 2>/dev/null || true
        fi
    done
}
