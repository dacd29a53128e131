#!/usr/bin/env bash
# Debian packages for the emulated arm64 board (`edgekit emulator create rpi`, --target qemu-arm64,
# the slow test tier): mmdebstrap unpacks an arm64 Debian, qemu-user-static + binfmt-support run it.
# Installs only what is missing (needs root and apt), then registers qemu-aarch64 with binfmt_misc
# (no systemd here to do it). The root filesystem itself is built on first use and cached in
# ~/.cache/edgekit/emulators/rpi (≈ 70 s cold, ≈ 0.8 GB).
set -euo pipefail
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
. "$(dirname "$0")/apt-missing.sh"
if [ "$(id -u)" = 0 ]; then
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
fi
