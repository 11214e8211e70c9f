"""`edge-asd demo`: the whole chain on generated machine sound (not built yet)."""

from __future__ import annotations

import argparse
import sys

PLAN = """edge-asd demo will:
  1. generate normal sound of a machine with edge_asd.synth,
  2. train a small ST-gram + MobileFaceNet model on it (cached after the first run),
  3. calibrate a threshold on held-out normal sound,
  4. start its own mosquitto broker on a free loopback port,
  5. run the daemon on a live synthetic source with injected faults,
  6. print each window's score and each MQTT alert with its delay after the fault.
It is not built yet (issue: `edge-asd demo` and the README)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the whole chain on generated machine sound")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(PLAN, file=sys.stderr)
    return 1
