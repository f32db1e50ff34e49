#!/usr/bin/env bash
# Quick start, command 1: set everything up, build, and start moescope (the desktop app, on the
# bundled teaching model unless --model DIR is given; it needs a display).
# Extra arguments go to the program (e.g. --model DIR, --backend cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
build=${MOESCOPE_BUILD_DIR:-build}
if [ -x "$build/app/desktop/moescope" ]; then
  exec "$build/app/desktop/moescope" "$@"
fi
# A build without the desktop app (MOESCOPE_BUILD_UI=OFF): one chat turn with the bundled model.
exec "$build/app/cli/moescope-cli" generate --chat --prompt "What is 23+58?" --max-tokens 16 "$@"
