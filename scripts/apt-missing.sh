# Sourced by the *-deps.sh scripts: install the Debian packages named in "${need[@]}", if any.
# Needs root and apt; otherwise says what is missing and fails.
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "missing system packages: ${need[*]} (install them with your package manager)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
