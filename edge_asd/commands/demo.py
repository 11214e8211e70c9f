"""`edge-asd demo`: the whole chain on generated machine sound, with its own broker."""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole chain on generated machine sound",
        description="Train (once, cached) a small ST-gram + MobileFaceNet model on generated "
        "machine sound, calibrate it, start a private mosquitto and the daemon on a live "
        "generated stream with injected faults, and show each score and MQTT alert.",
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help="100 s of sound as fast as it can be scored, two faults",
    )
    parser.add_argument("--model", type=Path, help="use this model directory, train none")
    parser.add_argument("--cache-dir", type=Path, help="where the demo model is kept")
    parser.add_argument("--work-dir", type=Path, help="keep the run's files here")
    parser.add_argument(
        "--scorer", default="auto", help="calibration scorer (default auto, as edge-asd calibrate)"
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for inference")
    parser.add_argument(
        "--png", type=Path, default=Path("edge-asd-demo.png"), help="where the score trace goes"
    )
    parser.add_argument("--summary-json", type=Path, help="also write the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_asd.demo.model import default_cache_dir, ensure_demo_model
    from edge_asd.demo.run import DemoOptions, run_demo
    from edge_asd.demo.scenario import DEFAULT, SHORT

    scenario = SHORT if args.short else DEFAULT
    model_dir = args.model or ensure_demo_model(
        args.cache_dir or default_cache_dir(), scenario.machine_type, args.threads
    )
    with tempfile.TemporaryDirectory(prefix="edge-asd-demo-") as temporary:
        work_dir = args.work_dir or Path(temporary)
        work_dir.mkdir(parents=True, exist_ok=True)
        options = DemoOptions(
            scenario=scenario,
            work_dir=work_dir,
            model_dir=model_dir,
            scorer=args.scorer,
            threshold_args=("--quantile", "0.99"),
            threads=args.threads,
            png_path=args.png,
        )
        summary = run_demo(options)
    if args.work_dir is None:
        print(
            "the run's files (calibration, daemon config and log, each event's sound and "
            "picture) were in a temporary folder, removed now: --work-dir DIR keeps them"
        )
    else:
        print(f"each event's sound and picture: {work_dir / 'evidence'}")
    if args.summary_json:
        args.summary_json.write_text(json.dumps(asdict(summary), default=str, indent=2))
    return 0 if summary.all_detected and not summary.false_alarms else 1
