#!/usr/bin/env bash
# Debian packages the tests use: headless Chromium (HTML report rendering), OpenSSH server
# (a real board stand-in on 127.0.0.1). Installed only when missing; needs root and apt.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v adb >/dev/null || need+=(adb)  # the real adb server for the emulated Android phone
. "$(dirname "$0")/apt-missing.sh"
