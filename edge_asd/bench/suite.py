"""The whole benchmark: engines side by side, then the daemon end to end; one report.

Engine rows (same windows, subjects taking turns, see `latency`):
- model.onnx in an onnxruntime session with stock options (the starting point);
- model.onnx in the runtime's OnnxEngine (tuned session options: `optimise: false`);
- the model's split (FastOnnxEngine.infer): every window on its own;
- the split on consecutive windows of one stream (infer_streams), as the daemon and the
  offline commands run it, the windows of a batch side by side on the worker threads
  (the engine's default), and the same with one window at a time on all the threads;
- TensorRT, where it runs; and any extra subjects the caller adds (PyTorch eager, in
  benchmarks/bench_runtime.py: edge_asd never imports torch).

Daemon rows (`edge-asd run`, a real mosquitto): one channel replayed as fast as possible
at hop 1 s, and eight channels in real time at hop 1 s, each with model.onnx as it is and
with the split (the default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_asd.bench import report, workspace
from edge_asd.bench.daemon import DaemonResult, run_daemon
from edge_asd.bench.latency import BATCH_SIZES, LatencyResult, Subject, measure_latency
from edge_asd.model_file import load_model_info

STOCK = "onnxruntime: model.onnx, stock session"
PLAIN = "onnxruntime: model.onnx"
SPLIT = "onnxruntime: split"
STREAM = "onnxruntime: split, stream (hop 1 s)"
STREAM_ONE_AT_A_TIME = "onnxruntime: split, stream, one window at a time"
TENSORRT = "tensorrt: model.onnx"


@dataclass(frozen=True)
class Options:
    """What to run. Seconds are audio seconds (fast) or wall seconds (real time)."""

    threads: int = 2
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    calls: int = 10
    tensorrt: bool = True  # try it; noted as unavailable where it cannot run
    daemon: bool = True
    plain_daemon: bool = True  # also the daemon with `optimise: false`, side by side
    fast_seconds: float = 300.0
    realtime_channels: int = 8
    realtime_seconds: float = 30.0


@dataclass(frozen=True)
class Report:
    """Everything measured, and the text (Markdown) that says it."""

    latency: list[LatencyResult]
    daemons: list[DaemonResult]
    notes: list[str]
    text: str


def engine_subjects(model: Path, options: Options, notes: list[str]) -> list[Subject]:
    """The runtime's subjects (see the module doc); what cannot run here is noted."""
    import onnxruntime as ort

    from edge_asd.engines import open_engine
    from edge_asd.engines.fast_onnx import FastOnnxEngine
    from edge_asd.errors import UserError
    from edge_asd.model_file import INPUT_NAME

    info = load_model_info(model)
    stock_options = ort.SessionOptions()
    stock_options.intra_op_num_threads = options.threads
    stock = ort.InferenceSession(info.onnx_path, stock_options, providers=["CPUExecutionProvider"])
    plain = open_engine(model, threads=options.threads, optimise=False)
    subjects = [
        Subject(STOCK, lambda w, ends: stock.run(None, {INPUT_NAME: w})),
        Subject(PLAIN, lambda w, ends: plain.infer(w)),
    ]
    if info.split is None:
        notes.append(
            f"split rows not measured: {model} has no split model; add it with "
            f"`edge-asd-train split --model {model}`"
        )
    else:
        split, stream = (open_engine(model, threads=options.threads) for _ in range(2))
        one_at_a_time = FastOnnxEngine(info, threads=options.threads, workers=1)
        subjects += [
            Subject(SPLIT, lambda w, ends: split.infer(w)),
            Subject(STREAM, _stream_run(stream)),
            Subject(STREAM_ONE_AT_A_TIME, _stream_run(one_at_a_time)),
        ]
    if options.tensorrt:
        try:
            trt = open_engine(
                model, "tensorrt", allow_fallback=False, max_batch=max(options.batch_sizes)
            )
            subjects.append(Subject(TENSORRT, lambda w, ends: trt.infer(w)))
        except UserError as exc:
            notes.append(f"TensorRT not measured: {exc}")
    return subjects


def _stream_run(engine):
    return lambda w, ends: engine.infer_streams(w, ["bench"] * len(w), ends)


def run_daemons(
    model: Path, options: Options, work: Path, progress: Callable[[str], None]
) -> list[DaemonResult]:
    """The daemon rows (see the module doc), against one private mosquitto."""
    from edge_asd.mosquitto import Broker

    channels = options.realtime_channels
    names = [f"m{i}" for i in range(channels)]
    progress("daemon: generating recordings and calibrations")
    calibrations = workspace.write_calibrations(model, work / "calibration", names)
    one = {names[0]: calibrations[names[0]]}
    long_file = workspace.write_recording(work / "long.wav", options.fast_seconds)
    live_seconds = 10.0 + options.realtime_seconds + 10.0  # a window, the run, a margin
    live_file = workspace.write_recording(work / "live.wav", live_seconds, channels, seed=50)
    runs = []
    if options.plain_daemon:
        runs.append(("daemon, model.onnx: 1 channel, file, fast", long_file, one, False, None))
    runs.append(("daemon, split: 1 channel, file, fast", long_file, one, True, None))
    live = (f"{channels} channels, real time", live_file, calibrations)
    if options.plain_daemon:
        runs.append((f"daemon, model.onnx: {live[0]}", live[1], live[2], False, True))
    runs.append((f"daemon, split: {live[0]}", live[1], live[2], True, True))
    broker = Broker(work / "broker").start()
    results = []
    try:
        for index, (label, audio, machines, optimise, realtime) in enumerate(runs):
            progress(f"daemon: {label}")
            source = {"kind": "file", "path": str(audio), "realtime": bool(realtime)}
            engine = {"threads": options.threads, "optimise": optimise}
            config = workspace.write_config(
                work / f"run{index}.yaml", model, source, machines, broker.port, engine
            )
            results.append(
                run_daemon(
                    label,
                    config,
                    broker.port,
                    work / f"run{index}.log",
                    max_seconds=600.0,
                    measure_seconds=options.realtime_seconds if realtime else None,
                )
            )
    finally:
        broker.stop()
    return results


def run_suite(
    model: Path,
    work: Path,
    options: Options = Options(),
    extra_subjects: Sequence[Subject] = (),
    reference: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
    command: str = "",
) -> Report:
    """Measure everything (see the module doc) and write the report text.

    `reference`: the label of an extra subject the latency target is measured against
    (PyTorch eager). `command`: the command line that reproduces the report.
    """
    notes: list[str] = []
    load_before = report.load_text()
    subjects = [*extra_subjects, *engine_subjects(model, options, notes)]
    progress(f"latency: {len(subjects)} subjects, batches {list(options.batch_sizes)}")
    window_samples = load_model_info(model).window_samples
    latency = measure_latency(
        subjects,
        options.batch_sizes,
        options.calls,
        window_samples=window_samples,
        progress=progress,
    )
    daemons = run_daemons(model, options, work, progress) if options.daemon else []
    for result in daemons:
        if result.exit_code not in (0, None):
            notes.append(f"{result.label}: exit code {result.exit_code}:\n{result.log_tail}")
    text = _text(model, latency, daemons, notes, reference, load_before, command)
    return Report(latency, daemons, notes, text)


def _text(model, latency, daemons, notes, reference, load_before, command) -> str:
    info = load_model_info(model)
    targets = []
    if reference is not None:
        for ours in (SPLIT, STREAM):
            target = report.latency_ratio_target(latency, ours, reference)
            if target is not None:
                targets.append(target)
    fast = _find(daemons, "split: 1 channel, file, fast")
    live = _find(daemons, "split: ", "real time")
    targets += report.daemon_targets(fast, live)
    parts = [
        f"Model: {info.backbone}, {len(info.labels)} labels, window {info.window_samples} "
        f"samples, model.onnx sha256 {info.onnx_sha256[:12]}",
        report.machine_summary(load_before),
        f"- {report.versions()}",
        "",
        report.table(latency, daemons),
        "",
        "Targets (issue 8):",
        report.targets_text(targets) or "- none measured",
    ]
    if notes:
        parts += ["", "Notes:", *[f"- {note}" for note in notes]]
    if command:
        parts += ["", f"Reproduce: `{command}`"]
    return "\n".join(parts)


def _find(results: Sequence[DaemonResult], *parts: str) -> DaemonResult | None:
    return next((r for r in results if all(p in r.label for p in parts)), None)


__all__ = ["Options", "Report", "Subject", "run_suite"]
