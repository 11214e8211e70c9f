"""`edge-asd-train evaluate`: the command line of evaluate.py and report.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_asd.scoring.registry import known_kinds_text
from train.evaluate import evaluate_run
from train.report import table, write_report


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="DCASE 2022 metrics on a tree's test clips")
    p.add_argument("--data", required=True, help="DCASE 2022 root with <type>/test/*.wav")
    p.add_argument("--run", required=True, help="run directory (or a model directory)")
    p.add_argument(
        "--scorer",
        default="auto",
        help="auto (default: chosen per section by synthetic faults, as `edge-asd calibrate` "
        f"does), or one of {known_kinds_text()}, or several joined by '+' (e.g. knn+twfr)",
    )
    p.add_argument(
        "--out", help="where the CSVs, summary.json and roc.png go (default RUN/eval_<scorer>)"
    )
    p.add_argument("--engine", choices=("onnxruntime", "tensorrt"), default="onnxruntime")
    p.add_argument(
        "--short-clips",
        choices=("tile", "pad"),
        default="tile",
        help="what to do with a test clip shorter than the window",
    )
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: one per core)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sections = evaluate_run(
        args.data, args.run, args.scorer, args.engine, args.threads, args.short_clips
    )
    out = Path(args.out) if args.out else Path(args.run) / f"eval_{args.scorer}"
    data = write_report(sections, out)
    print(table(data))
    print(f"results in {out}")
    return 0
