"""`edge-asd calibrate`: a threshold (and memory bank) from a machine's own normal sound.

    edge-asd calibrate --model M --machine NAME [--label LABEL]
        (--input PATH... | --record SECONDS [--device D] [--channel K])
        [--new-condition PATH...] [--scorer knn|section|twfr|knn+twfr|...] [--fusion mean|max]
        [--quantile Q | --false-alarms-per-day F] [--hop-seconds H] --out calibration.yaml

Reads and checks every input first (all problems at once), runs the model over every
window as the daemon will see them, scores them honestly (see edge_asd.calibration),
chooses the threshold, and only then writes `calibration.yaml`, its `.npz` and a `.png`
report beside it, each atomically. Several scorers joined by '+' are fused: each is
standardised on its honest scores and the threshold is set on the fused score.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_asd.errors import EXIT_USAGE, UserError
from edge_asd.labels import matching_indices

log = logging.getLogger(__name__)

MACHINE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="threshold (and memory bank) from normal audio",
        description="Calibrate a machine's threshold (and knn memory bank) on its own "
        "known-normal sound, for one model.",
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
        help="normal sound of a second operating mode, kept raw in the knn bank",
    )
    parser.add_argument(
        "--scorer",
        default="knn",
        help="knn (default), section, twfr, or several joined by '+' (e.g. knn+twfr): fused",
    )
    parser.add_argument(
        "--fusion",
        default="mean",
        choices=("mean", "max"),
        help="how a fusion combines its scorers' z-scores (default mean)",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--quantile", type=float, help="gamma-fit quantile (DCASE uses 0.9)")
    target.add_argument(
        "--false-alarms-per-day",
        type=float,
        help="expected false alarms a day (the default, at 1)",
    )
    parser.add_argument("--hop-seconds", type=float, default=1.0, help="seconds between windows")
    parser.add_argument("--k", type=int, default=3, help="windows above the threshold to open")
    parser.add_argument("--n", type=int, default=5, help="... out of the last n windows")
    parser.add_argument("--m-close", type=int, default=5, help="windows below to close")
    parser.add_argument("--centres", type=int, default=16, help="k-means centres of the bank")
    parser.add_argument("--seed", type=int, default=0, help="k-means seed")
    parser.add_argument("--skip-bad-files", action="store_true", help="leave bad files out")
    parser.add_argument("--engine", default="onnxruntime", help="onnxruntime (default) | tensorrt")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per inference batch")
    parser.add_argument("--out", required=True, help="calibration.yaml to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_asd.calibration.build import Settings, calibrate
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
            main, note = _record(args, engine, args.record, hop)
        else:
            main, note = _embed_all(args, engine, main_plan, hop), _describe(args.input, main_plan)
        new = _embed_all(args, engine, new_plan, hop)
        if new:
            note += f"; new condition: {_describe(args.new_condition, new_plan)}"
        result = calibrate(main, new, replace(settings, source=note), engine.info)
    finally:
        engine.close()
    for warning in result.choice.warnings:
        log.warning("%s", warning)
    _write(out, result, args.machine)
    return 0


def _settings(args: argparse.Namespace, settings_type):
    if not MACHINE_NAME.match(args.machine):
        raise UserError(
            f"--machine {args.machine!r}: use 1-64 letters, digits, '_' or '-'", EXIT_USAGE
        )
    if args.record is not None and not args.record > 0:
        raise UserError(f"--record must be a number of seconds > 0, not {args.record}", EXIT_USAGE)
    for name in ("k", "n", "m_close", "batch_size", "centres"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1", EXIT_USAGE)
    if args.k > args.n:
        raise UserError(f"--k {args.k} cannot exceed --n {args.n}", EXIT_USAGE)
    from edge_asd.scoring.scorer import scorer_names

    names = scorer_names(args.scorer, "--scorer")
    if "section" in names and not args.label:
        raise UserError("--scorer section needs --label (a model label or a prefix)", EXIT_USAGE)
    return settings_type(
        machine=args.machine,
        scorer=args.scorer,
        label=args.label,
        hop_seconds=args.hop_seconds,
        k=args.k,
        n=args.n,
        m_close=args.m_close,
        quantile=args.quantile,
        false_alarms_per_day=args.false_alarms_per_day,
        n_centres=args.centres,
        seed=args.seed,
        combiner=args.fusion,
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


def _embed_all(args, engine, recordings, hop: int) -> list:
    """Engine outputs of every window of checked recordings, with a progress bar."""
    from edge_asd.windows import window_starts

    info = engine.info
    total = sum(
        max(1, len(window_starts(round(r.seconds * info.sample_rate), info.window_samples, hop)))
        for r in recordings
    )
    progress = Progress(total, "embedding windows")
    embedded = []
    for recording in recordings:
        samples = recording.load(args.channel, info.window_samples)
        embedded.append(
            _embed(
                engine,
                recording.name,
                samples,
                hop,
                args.batch_size,
                progress,
                recording.seconds,
                pool=_wants_twfr(args),
            )
        )
    progress.close()
    return embedded


def _describe(paths: list[str], recordings) -> str:
    n_files = sum(len(r.files) for r in recordings)
    shown = ", ".join(str(p) for p in paths[:2])
    if len(paths) > 2:
        shown += f" and {len(paths) - 2} more"
    return f"{n_files} file(s) from {shown}"


def _wants_twfr(args: argparse.Namespace) -> bool:
    return "twfr" in args.scorer.split("+")


def _embed(engine, name, samples, hop, batch_size, progress=None, seconds=None, pool=False):
    """A recording's Embedded outputs; with `pool`, its log-mel pooled at every twfr r (the
    log-mel itself is not kept: 160 kB a window)."""
    from edge_asd.calibration.build import Embedded
    from edge_asd.scoring.offline import batched_outputs
    from edge_asd.scoring.twfr import pool_candidates

    embeddings, logits, pooled = [], [], []
    for output in batched_outputs(engine, samples, hop, batch_size):
        embeddings.append(np.asarray(output.embedding, dtype=np.float32))
        logits.append(np.asarray(output.logits, dtype=np.float32))
        if pool:
            pooled.append(pool_candidates(output.logmel))
        if progress is not None:
            progress.advance(len(output.embedding))
    if not embeddings:
        raise UserError(f"{name}: shorter than one window")
    seconds = len(samples) / engine.info.sample_rate if seconds is None else seconds
    return Embedded(
        name,
        np.concatenate(embeddings),
        np.concatenate(logits),
        seconds,
        np.concatenate(pooled) if pool else None,
    )


def _record(args, engine, seconds: float, hop: int):
    """Embedded stretches of a live capture, and a note saying where they came from."""
    from edge_asd.calibration.record import record

    info = engine.info
    progress = Progress(round(seconds * info.sample_rate), f"recording {seconds:g} s")
    stretches = record(seconds, args.device, args.channel, info.window_samples, progress.advance)
    progress.close()
    embedded = [
        _embed(
            engine,
            f"live capture, stretch {i + 1}",
            samples,
            hop,
            args.batch_size,
            pool=_wants_twfr(args),
        )
        for i, samples in enumerate(stretches)
    ]
    channel = 0 if args.channel is None else args.channel
    return (
        embedded,
        f"recorded {seconds:g} s from {args.device or 'the default input'}, channel {channel}",
    )


def _write(out: Path, result, machine: str) -> None:
    from edge_asd.calibration.file import arrays_path, save_calibration, write_atomic
    from edge_asd.calibration.report import render_report_png, summary_lines

    calibration = result.calibration
    scores = np.concatenate(result.runs)
    png = render_report_png(
        result.runs,
        result.choice,
        f"{machine}: {calibration.scorer} scores, {calibration.n_windows} windows",
        result.components,
        result.standardisers,
    )
    save_calibration(calibration, out)
    png_path = out.with_suffix(".png")
    write_atomic(png_path, png)
    lines = summary_lines(
        result.choice,
        scores,
        calibration.scorer,
        calibration.n_recordings,
        result.components,
        result.standardisers,
    )
    for line in lines + _twfr_lines(calibration.scorer_params):
        print(line)
    written = [str(out)]
    if calibration.all_arrays():
        written.append(str(arrays_path(out)))
    print("wrote " + ", ".join([*written, str(png_path)]))


def _twfr_lines(params: dict) -> list[str]:
    """What the twfr scorer chose, when it is (one of) the calibration's scorers."""
    twfr = params.get("twfr", params)
    if "held_out_log_likelihood" not in twfr:
        return []
    return [
        f"twfr: r {twfr['r']:g}, {twfr['n_components']} component(s), regularisation "
        f"{twfr['reg_covar']:g}: the best held-out likelihood of "
        f"{len(twfr['held_out_log_likelihood'])} candidates on normal windows"
    ]


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
