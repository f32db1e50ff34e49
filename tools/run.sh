#!/usr/bin/env bash
# Quick start, command 1: set everything up, build, and start moescope.
# Extra arguments go to the program (e.g. --model DIR, --backend cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
build=${MOESCOPE_BUILD_DIR:-build}
if [ -x "$build/app/desktop/moescope" ]; then
  exec "$build/app/desktop/moescope" "$@"
fi
# Until the desktop app lands: chat once with the committed tiny test model on the command line.
exec "$build/app/cli/moescope-cli" generate --model tests/data/models/chat-tiny --chat \
  --prompt "What is a mixture of experts?" --max-tokens 48 --backend auto "$@"
