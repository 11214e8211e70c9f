#!/usr/bin/env bash
# The README's first command: set up without the test tools, then run `edge-asd demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/edge-asd demo "$@"
