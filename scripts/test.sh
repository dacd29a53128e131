#!/usr/bin/env bash
# Set up .venv with the test dependencies and run the whole test suite (the CI entry point).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/emulator-deps.sh
scripts/setup.sh dev
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
[ "$code" -eq 5 ] && { echo "pytest collected no tests" >&2; exit 1; }
exit "$code"
