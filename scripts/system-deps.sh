#!/usr/bin/env bash
# Debian packages the tests use: headless Chromium (HTML report rendering), OpenSSH server
# (a real board stand-in on 127.0.0.1). Installed only when missing; needs root and apt.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v adb >/dev/null || need+=(adb)  # the real adb server for the emulated Android phone
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "missing system packages: ${need[*]} (install them with your package manager)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
