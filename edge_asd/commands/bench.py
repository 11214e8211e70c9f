"""`edge-asd bench`: latency and throughput of the engines, and of the daemon end to end.

    edge-asd bench --model DIR [--threads 2] [--batch-sizes 1,4,16] [--calls 10]
        [--no-daemon] [--fast-seconds 300] [--realtime-channels 8] [--out FILE]

Prints one Markdown table (see edge_asd.bench.suite), the machine it ran on, and the
performance targets met or missed. benchmarks/bench_runtime.py runs the same with the
model in PyTorch eager beside it, as the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edge_asd.errors import EXIT_USAGE, UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="latency and throughput of an engine, and of the daemon",
        description="Measure per-window latency and throughput of the engines at several "
        "batch sizes, side by side, and the daemon end to end (a file as fast as possible, "
        "channels in real time, memory, time to the first score); print one table.",
    )
    parser.add_argument("--model", required=True, help="model directory (model.onnx + .yaml)")
    add_options(parser)
    parser.set_defaults(func=run)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options `edge-asd bench` and benchmarks/bench_runtime.py share."""
    parser.add_argument("--threads", type=int, default=2, help="engine threads (default 2)")
    parser.add_argument(
        "--batch-sizes", default="1,4,16", help="comma-separated batch sizes (default 1,4,16)"
    )
    parser.add_argument(
        "--calls", type=int, default=10, help="timed calls per engine and batch size"
    )
    parser.add_argument("--no-tensorrt", action="store_true", help="do not try TensorRT")
    parser.add_argument("--no-daemon", action="store_true", help="engines only, no daemon")
    parser.add_argument(
        "--no-plain-daemon",
        action="store_true",
        help="skip the daemon runs of model.onnx as it is (optimise: false)",
    )
    parser.add_argument(
        "--fast-seconds",
        type=float,
        default=300.0,
        help="length of the file the daemon replays as fast as possible (default 300)",
    )
    parser.add_argument(
        "--realtime-channels", type=int, default=8, help="channels scored in real time (8)"
    )
    parser.add_argument(
        "--realtime-seconds",
        type=float,
        default=30.0,
        help="seconds the real-time run is measured, after its first score (default 30)",
    )
    parser.add_argument("--work", help="folder for generated audio, configs and logs")
    parser.add_argument("--out", help="also write the report (Markdown) to this file")


def options_from_args(args: argparse.Namespace):
    """edge_asd.bench.suite.Options from the parsed options; UserError when unusable."""
    from edge_asd.bench.suite import Options

    try:
        batch_sizes = tuple(int(part) for part in args.batch_sizes.split(","))
    except ValueError:
        batch_sizes = ()
    if not batch_sizes or min(batch_sizes) < 1:
        raise UserError(
            f"--batch-sizes {args.batch_sizes!r}: give positive integers, e.g. 1,4,16",
            EXIT_USAGE,
        )
    for name in ("threads", "calls", "realtime_channels"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1", EXIT_USAGE)
    if args.fast_seconds < 20 or args.realtime_seconds < 5:
        raise UserError("--fast-seconds must be >= 20 and --realtime-seconds >= 5", EXIT_USAGE)
    return Options(
        threads=args.threads,
        batch_sizes=batch_sizes,
        calls=args.calls,
        tensorrt=not args.no_tensorrt,
        daemon=not args.no_daemon,
        plain_daemon=not args.no_plain_daemon,
        fast_seconds=args.fast_seconds,
        realtime_channels=args.realtime_channels,
        realtime_seconds=args.realtime_seconds,
    )


def run(args: argparse.Namespace) -> int:
    from edge_asd.bench.suite import run_suite
    from edge_asd.model_file import load_model_info

    options = options_from_args(args)
    load_model_info(args.model)  # a missing or broken model fails before anything runs
    command = command_line("edge-asd bench", args)
    with work_dir(args.work) as work:
        result = run_suite(Path(args.model), work, options, progress=progress, command=command)
    write_report(result.text, args.out)
    return 0


def write_report(text: str, out: str | None) -> None:
    """Print the report; with `out`, write it there too."""
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def work_dir(path: str | None) -> Iterator[Path]:
    """`path` (created), or a temporary folder removed afterwards."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="edge-asd-bench-") as temp:
        yield Path(temp)


def command_line(prefix: str, args: argparse.Namespace) -> str:
    """The command that reproduces this run: `prefix`, then every measuring option."""
    words = [f"--model {shlex.quote(str(args.model))}"] if args.model else []
    words += [
        f"--threads {args.threads}",
        f"--batch-sizes {args.batch_sizes}",
        f"--calls {args.calls}",
        f"--fast-seconds {args.fast_seconds:g}",
        f"--realtime-channels {args.realtime_channels}",
        f"--realtime-seconds {args.realtime_seconds:g}",
    ]
    flags = ("no_tensorrt", "no_daemon", "no_plain_daemon")
    words += [f"--{flag.replace('_', '-')}" for flag in flags if getattr(args, flag)]
    return " ".join([prefix, *words])
