#!/usr/bin/env bash
# Build a Debian bookworm arm64 root for the emulated aarch64 check (docs/aarch64.md).
#
#   bash .ci/aarch64/build_root.sh [ROOT_DIR]      (default: .ci/aarch64/root, git-ignored)
#
# Needs root. Installs debootstrap, qemu-user-static and binfmt-support on the host when missing,
# registers qemu-aarch64 with binfmt_misc (mounting binfmt_misc first when it is not mounted), runs
# `debootstrap --arch=arm64 --foreign`, then the second stage inside the root through qemu, then apt
# installs python3, python3-venv and python3-pip inside the root. A finished root (marker file
# .rtu-aarch64-root-done) is reused as it is: the script is idempotent.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
ROOT_DIR="${1:-$here/root}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
MARKER=".rtu-aarch64-root-done"

log() { printf '[build_root %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[build_root] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, binfmt_misc)"

# --- host tools ---------------------------------------------------------------------------------
missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || missing+=(binfmt-support)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing host packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static binfmt-support
fi
QEMU="$(command -v qemu-aarch64-static)"

# --- binfmt_misc: aarch64 ELF binaries run through qemu-aarch64-static ----------------------------
# debootstrap's second stage, dpkg maintainer scripts, apt and pip all exec further programs, so an
# explicit `qemu-aarch64-static prog` only covers the first process: binfmt_misc is required.
BINFMT=/proc/sys/fs/binfmt_misc
if [ ! -e "$BINFMT/register" ]; then
    log "mounting binfmt_misc on $BINFMT"
    mount -t binfmt_misc binfmt_misc "$BINFMT" \
        || die "cannot mount binfmt_misc (container without the privilege?): aarch64 programs cannot be run"
fi
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
    log "registering qemu-aarch64 with binfmt_misc"
    update-binfmts --enable qemu-aarch64 || true
fi
if [ ! -e "$BINFMT/qemu-aarch64" ] && [ -e /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
    # systemd-style registration line, as shipped by qemu-user-static
    cat /usr/lib/binfmt.d/qemu-aarch64.conf > "$BINFMT/register" || true
fi
grep -q '^enabled' "$BINFMT/qemu-aarch64" 2>/dev/null \
    || die "qemu-aarch64 is not registered with binfmt_misc ($BINFMT/qemu-aarch64 missing or disabled)"
log "binfmt_misc: $(tr '\n' ' ' < "$BINFMT/qemu-aarch64")"

# --- reuse a finished root ----------------------------------------------------------------------
if [ -f "$ROOT_DIR/$MARKER" ]; then
    log "reusing finished root $ROOT_DIR ($(cat "$ROOT_DIR/$MARKER"))"
    exit 0
fi

mkdir -p "$ROOT_DIR"
ROOT_DIR="$(cd "$ROOT_DIR" && pwd)"

# shellcheck source=.ci/aarch64/chroot_lib.sh
. "$here/chroot_lib.sh"
trap 'chroot_umount "$ROOT_DIR"' EXIT

t0=$(date +%s)
if [ ! -x "$ROOT_DIR/debootstrap/debootstrap" ] && [ ! -f "$ROOT_DIR/etc/debian_version" ]; then
    log "debootstrap first stage: $SUITE arm64 from $MIRROR into $ROOT_DIR"
    debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=ca-certificates "$SUITE" "$ROOT_DIR" "$MIRROR"
elif [ -x "$ROOT_DIR/debootstrap/debootstrap" ]; then
    log "first stage already present, resuming with the second stage"
fi

# the static emulator inside the root (binfmt's F flag does not need it, a registration without F does)
install -D -m 0755 "$QEMU" "$ROOT_DIR/usr/bin/qemu-aarch64-static"

if [ -x "$ROOT_DIR/debootstrap/debootstrap" ]; then
    log "debootstrap second stage (emulated)"
    chroot "$ROOT_DIR" /usr/bin/qemu-aarch64-static /bin/sh -c 'true' \
        || die "cannot run an aarch64 program in the root even explicitly through qemu-aarch64-static"
    chroot "$ROOT_DIR" /debootstrap/debootstrap --second-stage
fi
[ "$(chroot "$ROOT_DIR" /usr/bin/dpkg --print-architecture)" = arm64 ] || die "root is not arm64"
t1=$(date +%s)
log "debootstrap done in $((t1 - t0)) s"

# --- python inside the root ---------------------------------------------------------------------
cat > "$ROOT_DIR/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
EOF
# Host-local CA certificates (e.g. those of a TLS-inspecting proxy) are trusted inside the root too,
# so pip inside the root reaches PyPI wherever pip on the host does.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$ROOT_DIR/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT_DIR/usr/local/share/ca-certificates/"
fi
cp /etc/resolv.conf "$ROOT_DIR/etc/resolv.conf" 2>/dev/null || true
chroot_mount "$ROOT_DIR"
log "apt-get install python3 python3-venv python3-pip (emulated)"
chroot "$ROOT_DIR" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends \
           python3 python3-venv python3-pip ca-certificates && update-ca-certificates && apt-get clean'
chroot "$ROOT_DIR" /usr/bin/python3 -c 'import platform, sys; print(platform.machine(), sys.version.split()[0])'
t2=$(date +%s)
log "python installed in $((t2 - t1)) s"

echo "bookworm arm64, debootstrap $((t1 - t0)) s, python $((t2 - t1)) s, built $(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    > "$ROOT_DIR/$MARKER"
log "root ready: $ROOT_DIR"
