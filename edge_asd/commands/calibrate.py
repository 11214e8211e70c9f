"""`edge-asd calibrate`: a machine's detector and threshold from its own normal sound.

    edge-asd calibrate --model M --machine NAME [--label LABEL]
        (--input PATH... | --record SECONDS [--device D] [--channel K])
        [--new-condition PATH...] [--scorer auto|knn|section|twfr|knn+twfr|...]
        [--fusion mean|max] [--quantile Q | --false-alarms-per-day F] [--hop-seconds H]
        --out calibration.yaml

Reads and checks every input first (all problems at once), streams every window through
the engine as the daemon will see them, makes synthetic faults from a few of them, and
(edge_asd.calibration.build) chooses the detector by what it detects, refuses one that
cannot, chooses the threshold on honest normal scores and measures the detectability
table; only then writes `calibration.yaml`, its `.npz` and a `.png` report beside it, each
atomically.
"""

from __future__ import annotations

import argparse
import functools
import logging
import re
import sys
from dataclasses import replace
from pathlib import Path

from edge_asd.errors import EXIT_USAGE, UserError
from edge_asd.labels import matching_indices

log = logging.getLogger(__name__)

MACHINE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="detector, threshold and detectability from normal audio",
        description="Calibrate a machine on its own known-normal sound, for one model: "
        "choose its detector by what it detects of synthetic faults made from that sound, "
        "set the threshold for a false-alarm rate, and measure the detectability table.",
    )
    parser.add_argument("--model", required=True, help="model directory (model.onnx + .yaml)")
    parser.add_argument("--machine", required=True, help="machine name (letters, digits, _ -)")
    parser.add_argument("--label", help="the model label (or prefix) the machine is bound to")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--input", nargs="+", metavar="PATH", help="WAV/FLAC files or folders")
    given.add_argument("--record", type=float, metavar="SECONDS", help="capture live audio")
    parser.add_argument("--device", help="input device for --record (name substring or index)")
    parser.add_argument("--channel", type=int, help="channel to use, from 0 (default: the mean)")
    parser.add_argument(
        "--new-condition",
        nargs="+",
        default=[],
        metavar="PATH",
        help="normal sound of a second operating mode (a knn bank keeps its windows raw)",
    )
    parser.add_argument(
        "--scorer",
        default="auto",
        help="auto (default: the scorers and options that best detect synthetic faults made "
        "from this machine's normal sound), or knn, section, twfr, or several joined by '+' "
        "(e.g. knn+twfr), each with its best options, fused",
    )
    parser.add_argument(
        "--fusion",
        default=None,
        choices=("mean", "max"),
        help="how a fusion combines its scorers' z-scores (default: the better on the "
        "synthetic faults)",
    )
    parser.add_argument(
        "--probes",
        type=int,
        default=24,
        help="normal windows synthetic faults are made from (default 24)",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--quantile", type=float, help="gamma-fit quantile (DCASE uses 0.9)")
    target.add_argument(
        "--false-alarms-per-day",
        type=float,
        help="expected false alarms a day (the default, at 1)",
    )
    parser.add_argument(
        "--hop-seconds", type=float, default=1.0, help="seconds between windows (default 1)"
    )
    parser.add_argument(
        "--k", type=int, default=3, help="windows above the threshold to open (default 3)"
    )
    parser.add_argument("--n", type=int, default=5, help="... of the last n windows (default 5)")
    parser.add_argument("--m-close", type=int, default=5, help="windows below to close (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of k-means and the faults")
    parser.add_argument("--skip-bad-files", action="store_true", help="leave bad files out")
    parser.add_argument("--engine", default="onnxruntime", help="onnxruntime (default) | tensorrt")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per inference batch")
    parser.add_argument("--out", required=True, help="calibration.yaml to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_asd.calibration.build import Settings, calibrate
    from edge_asd.calibration.collect import collect, probe_cases
    from edge_asd.calibration.inputs import plan_recordings
    from edge_asd.engines import open_engine
    from edge_asd.model_file import load_model_info

    settings = _settings(args, Settings)
    out = _check_out(Path(args.out))
    info = load_model_info(args.model)
    hop = _hop(args, info)
    if args.label:
        matching_indices(info.labels, args.label)  # a label the model lacks fails now
    plan = {
        "window_samples": info.window_samples,
        "channel": args.channel,
        "skip_bad": args.skip_bad_files,
    }
    main_plan = plan_recordings(args.input, **plan) if args.input else None
    new_plan = plan_recordings(args.new_condition, **plan) if args.new_condition else []
    engine = open_engine(args.model, args.engine, threads=args.threads)
    try:
        if main_plan is None:
            main, note, heard = _recorded_sources(args, engine.info, hop)
        else:
            main = _file_sources(args, main_plan, info, hop)
            note = _describe(args.input, main_plan)
            heard = _heard_from(main_plan + new_plan, args.channel, info)
        new = _file_sources(args, new_plan, info, hop, new_condition=True)
        if new:
            note += f"; new condition: {_describe(args.new_condition, new_plan)}"
        sources = main + new
        total = sum(s.n_windows for s in sources)
        progress = Progress(
            total + args.probes * len(probe_cases()), "scoring windows and synthetic faults"
        )
        data = collect(
            engine,
            sources,
            hop_samples=hop,
            n_probes=args.probes,
            seed=args.seed,
            advance=progress.advance,
        )
        progress.close()
        settings = replace(settings, source=note, heard=heard.to_dict())
        result = calibrate(data, settings, engine.info)
    finally:
        engine.close()
    for warning in result.choice.warnings:
        log.warning("%s", warning)
    _write(out, result, args.machine)
    return 0


def _file_sources(args, recordings, info, hop: int, new_condition: bool = False) -> list:
    from edge_asd.calibration.collect import file_sources

    return file_sources(
        recordings,
        window_samples=info.window_samples,
        hop_samples=hop,
        channel=args.channel,
        batch_size=args.batch_size,
        new_condition=new_condition,
    )


def _recorded_sources(args, info, hop: int):
    """Sources for the stretches of a live capture, and a note saying where they came from."""
    from edge_asd.calibration.collect import Source
    from edge_asd.calibration.record import record
    from edge_asd.recording import windows_of_blocks
    from edge_asd.windows import window_starts

    progress = Progress(round(args.record * info.sample_rate), f"recording {args.record:g} s")
    stretches, heard = record(
        args.record, args.device, args.channel, info.window_samples, progress.advance
    )
    progress.close()
    sources = []
    for i, samples in enumerate(stretches):
        stream = functools.partial(
            windows_of_blocks,
            [samples],
            window_samples=info.window_samples,
            hop_samples=hop,
            batch_size=args.batch_size,
        )
        count = len(window_starts(len(samples), info.window_samples, hop))
        name = f"live capture, stretch {i + 1}"
        sources.append(Source(name, len(samples) / info.sample_rate, count, stream))
    where = args.device or "the default input"
    return sources, f"recorded {args.record:g} s from {where}, channel {heard.channel}", heard


def _heard_from(recordings, channel: int | None, info):
    """How the recordings' audio is taken (edge_asd.calibration.heard), from the headers
    read when they were checked."""
    from edge_asd.calibration.heard import heard_from_files

    headers = [header for r in recordings for header in r.headers]
    return heard_from_files(headers, channel, info.sample_rate)


def _settings(args: argparse.Namespace, settings_type):
    if not MACHINE_NAME.match(args.machine):
        raise UserError(
            f"--machine {args.machine!r}: use 1-64 letters, digits, '_' or '-'", EXIT_USAGE
        )
    if args.record is not None and not args.record > 0:
        raise UserError(f"--record must be a number of seconds > 0, not {args.record}", EXIT_USAGE)
    for name in ("k", "n", "m_close", "batch_size", "probes"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1", EXIT_USAGE)
    if args.k > args.n:
        raise UserError(f"--k {args.k} cannot exceed --n {args.n}", EXIT_USAGE)
    if args.scorer != "auto":
        from edge_asd.scoring.registry import parse_kinds

        names = parse_kinds(args.scorer, "--scorer")
        if "section" in names and not args.label:
            raise UserError(
                "--scorer section needs --label (a model label or a prefix)", EXIT_USAGE
            )
    return settings_type(
        machine=args.machine,
        scorer=args.scorer,
        combiner=args.fusion,
        label=args.label,
        hop_seconds=args.hop_seconds,
        k=args.k,
        n=args.n,
        m_close=args.m_close,
        quantile=args.quantile,
        false_alarms_per_day=args.false_alarms_per_day,
        seed=args.seed,
    )


def _check_out(out: Path) -> Path:
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the calibration.yaml to write", EXIT_USAGE)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise UserError(f"--out {out}: name a .yaml file", EXIT_USAGE)
    return out


def _hop(args: argparse.Namespace, info) -> int:
    from edge_asd.windows import hop_samples

    try:
        return hop_samples(args.hop_seconds, info.sample_rate)
    except ValueError as exc:
        raise UserError(f"--hop-seconds: {exc}", EXIT_USAGE) from None


def _describe(paths: list[str], recordings) -> str:
    n_files = sum(len(r.files) for r in recordings)
    shown = ", ".join(str(p) for p in paths[:2])
    if len(paths) > 2:
        shown += f" and {len(paths) - 2} more"
    return f"{n_files} file(s) from {shown}"


def _write(out: Path, result, machine: str) -> None:
    from edge_asd.calibration.file import arrays_path, save_calibration, write_atomic
    from edge_asd.calibration.report import render_report_png, summary_lines

    png = render_report_png(result, f"{machine}: {result.calibration.scorer}")
    save_calibration(result.calibration, out)
    png_path = out.with_suffix(".png")
    write_atomic(png_path, png)
    for line in summary_lines(result):
        print(line)
    written = [str(out)]
    if arrays_path(out).exists():
        written.append(str(arrays_path(out)))
    print("wrote " + ", ".join([*written, str(png_path)]))


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.done = max(total, 1), what, 0
        self.enabled = sys.stderr.isatty()

    def advance(self, count: int) -> None:
        self.done = min(self.total, self.done + count)
        if self.enabled:
            filled = round(30 * self.done / self.total)
            bar = "#" * filled + "-" * (30 - filled)
            print(f"\r{self.what} [{bar}] {self.done}/{self.total}", end="", file=sys.stderr)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)
