"""The real check on ../shared/data/uav_propeller: normal flights quiet, broken ones alarmed.

    .venv/bin/python benchmarks/uav_propeller.py (--model MODEL_DIR | --train-epochs N)
        [--work DIR] [--threads T] [--json]

0. with --train-epochs, `edge-asd-train fit` on the train flights only (CPU, section
   labels = the four missions), and that model is used;
1. `edge-asd calibrate` (its defaults) on the train flights only: each flight's 10 s
   segments are joined back into one recording, as the calibration reads them;
2. every test flight (normal, and 1, 2 or 3 broken propellers) is joined the same way and
   scored window by window at the calibration's hop, as the daemon would hear it, with
   the calibration's bank, threshold and k-of-n decider;
3. one line per flight: windows, windows above the threshold, max score, the events the
   decider raised, and whether that is the right outcome (no event on a normal flight,
   at least one on a broken one). Exit status 0 when every flight is right.

The model must have been made from the train flights only (see `edge-asd-train fit`);
no flight is in both splits. No audio is written into the repository.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edge_asd.audio import audio_info
from edge_asd.cli import main as edge_asd
from edge_asd.dcase import Clip, group_recordings, list_clips
from edge_asd.decider import START
from edge_asd.engines import open_engine
from edge_asd.recording import stream_windows
from edge_asd.scoring.offline import decide, score_windows
from edge_asd.windows import hop_samples

REPO_ROOT = Path(__file__).resolve().parents[1]
MACHINE_TYPE = "uav_propeller"


@dataclass(frozen=True)
class FlightResult:
    """What the decider made of one joined test flight."""

    flight: str  # section_<XX>/<flight>
    broken: int  # broken propellers (0: a normal flight)
    seconds: float
    windows: int
    windows_above: int
    max_score: float
    mean_score: float
    events: int
    first_event_at_s: float | None  # seconds into the flight

    @property
    def correct(self) -> bool:
        return (self.events > 0) == (self.broken > 0)


def flight_segments(data_root: Path) -> dict[str, list[Clip]]:
    """Each test flight's segments in `seg` order, keyed section_<XX>/<flight>."""
    groups = group_recordings(list_clips(data_root, MACHINE_TYPE, "test"), "flight")
    return {
        f"section_{section}/{flight}": clips
        for (section, _domain, _condition, flight), clips in sorted(groups.items())
    }


def train(data_root: Path, work: Path, epochs: int, threads: int) -> Path:
    """`edge-asd-train fit` on uav_propeller's train flights; returns the model directory."""
    recipe = work / "uav_recipe.yaml"
    recipe.write_text(f"labels: section\nepochs: {epochs}\nbatch_size: 16\nlearning_rate: 0.001\n")
    command = [sys.executable, "-m", "train.cli", "fit", "--data", str(data_root)]
    command += ["--machine-type", MACHINE_TYPE, "--config", str(recipe)]
    command += ["--out", str(work / "run"), "--threads", str(threads), "-q"]
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return work / "run" / "model"


def calibrate(model: Path, data_root: Path, out: Path, threads: int, hop_seconds: float) -> None:
    """`edge-asd calibrate` with the knn scorer on the train flights only."""
    code = edge_asd(
        [
            "calibrate",
            *("--model", str(model), "--machine", "uav"),
            *("--input", str(data_root / MACHINE_TYPE / "train")),
            *("--hop-seconds", str(hop_seconds), "--threads", str(threads)),
            *("--out", str(out)),
        ]
    )
    if code != 0:
        raise SystemExit(f"edge-asd calibrate failed with exit status {code}")


def score_flights(
    model: Path, calibration_path: Path, data_root: Path, threads: int
) -> list[FlightResult]:
    """Score every joined test flight with the calibration's detector and decider, streamed
    as `edge-asd score` streams a file."""
    from edge_asd.calibration.file import load_calibration

    engine = open_engine(model, threads=threads)
    calibration = load_calibration(calibration_path, engine.info)
    hop = hop_samples(calibration.hop_seconds, engine.info.sample_rate)
    results = []
    for name, clips in flight_segments(data_root).items():
        batches = stream_windows(
            [c.path for c in clips], window_samples=engine.info.window_samples, hop_samples=hop
        )
        scores = score_windows(engine, calibration.detector, batches, stream=name)
        events = decide(
            scores, calibration.threshold, calibration.k, calibration.n, calibration.m_close
        )
        starts = [e.started_at for e in events if e.type == START]
        results.append(
            FlightResult(
                flight=name,
                broken=int(clips[0].attribute("broken") or 0),
                seconds=sum(audio_info(c.path).seconds for c in clips),
                windows=len(scores.scores),
                windows_above=int((scores.scores > calibration.threshold).sum()),
                max_score=float(scores.scores.max()),
                mean_score=float(scores.scores.mean()),
                events=len(starts),
                first_event_at_s=starts[0] if starts else None,
            )
        )
    engine.close()
    return results


def print_table(results: list[FlightResult], threshold: float) -> None:
    print(f"threshold {threshold:.4g}")
    print(f"{'flight':<24} {'broken':>6} {'s':>5} {'windows':>7} {'above':>5} "
          f"{'max':>9} {'events':>6} {'first':>6}  verdict")  # fmt: skip
    for r in results:
        first = "-" if r.first_event_at_s is None else f"{r.first_event_at_s:.0f}"
        verdict = "ok" if r.correct else "WRONG"
        print(
            f"{r.flight:<24} {r.broken:>6} {r.seconds:>5.0f} {r.windows:>7} "
            f"{r.windows_above:>5} {r.max_score:>9.4g} {r.events:>6} {first:>6}  {verdict}"
        )


def run_check(
    model: Path, data_root: Path, work: Path, threads: int = 2, hop_seconds: float = 1.0
) -> tuple[float, list[FlightResult]]:
    """Calibrate on the train flights, score the test flights: (threshold, results)."""
    from edge_asd.calibration.file import load_calibration
    from edge_asd.model_file import load_model_info

    calibration_path = work / "uav_calibration.yaml"
    calibrate(model, data_root, calibration_path, threads, hop_seconds)
    threshold = load_calibration(calibration_path, load_model_info(model)).threshold
    return threshold, score_flights(model, calibration_path, data_root, threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--model", type=Path, help="a model trained on the train flights only")
    given.add_argument("--train-epochs", type=int, help="train one first (CPU) for N epochs")
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, help="where the calibration goes (default: temp)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hop-seconds", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="also one JSON line per flight")
    args = parser.parse_args(argv)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        model = args.model or train(args.data, work, args.train_epochs, args.threads)
        trained_s = time.monotonic() - began
        threshold, results = run_check(model, args.data, work, args.threads, args.hop_seconds)
    print_table(results, threshold)
    if args.json:
        for r in results:
            print(json.dumps({**asdict(r), "correct": r.correct, "threshold": threshold}))
    right = sum(r.correct for r in results)
    checked_s = time.monotonic() - began - trained_s
    print(
        f"{right}/{len(results)} flights right; training {trained_s:.0f} s, check {checked_s:.0f} s"
    )
    return 0 if right == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
