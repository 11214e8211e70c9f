#!/usr/bin/env python3
"""Build the TensorRT engine for a model: the same as `edge-asd build-engine`.

    deploy/jetson/build_engine.py --model /var/lib/edge-asd/models/current \
        [--precision fp16|fp32] [--max-batch 16] [--workspace-mib 1024] [--cache-dir DIR]

For a checkout where the `edge-asd` command is not on the PATH (run it with the Python
that has edge-asd's dependencies, e.g. /opt/edge-asd/venv/bin/python). See
deploy/jetson/README.md and `--help`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's edge_asd

from edge_asd.cli import main  # after the path is set

if __name__ == "__main__":
    sys.exit(main(["build-engine", *sys.argv[1:]]))
