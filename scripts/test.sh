#!/usr/bin/env bash
# The README's test command: set up (Debian packages, .venv, Python packages), then lint
# and run every test. Extra arguments go to pytest, e.g. scripts/test.sh -k outbox.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGE_ASD_TEST_TOOLS=1 bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
