"""Detection quality of the section, knn, twfr and knn+twfr scorers on ../shared/data.

    .venv/bin/python benchmarks/quality.py (--model MODEL_DIR | --epochs N)
        [--data ../shared/data] [--work DIR] [--threads T] [--hop-seconds H]
        [--scorers section,knn,twfr,knn+twfr] [--sets NAME ...] [--json FILE]

Prints the table of docs/quality.md: per set, AUC(source), AUC(target), pAUC and the
official score (the harmonic mean over sections, as DCASE computes it with train.metrics)
for each scorer, and whether the fusion is at least as good as the best single scorer.

0. With --epochs, one shared model is trained first (`edge-asd-train fit`, CPU) on the
   normal train clips of every set that has them (sensiml_fan, uav_propeller, the six
   dcase2023 sets), labels `<set>/section_XX`; a set of its own would give sensiml_fan a
   single label, which a classifier cannot learn from.
1. Every set with normal and anomalous test clips is scored. Clips cut from one recording
   (`rec`, `flight`) are joined back in `seg` order; a recording shorter than a window is
   tiled to one (as `edge-asd calibrate` does). Windows end every hop, as the daemon sees
   them, and a clip's score is the mean score of the windows that overlap it.
2. Each section's scorers are calibrated exactly as `edge-asd calibrate` calibrates them
   (edge_asd.calibration.build.calibrate: honest leave-out scores, twfr's r and components
   chosen on normal windows, fusion standardised on honest scores) on the section's
   normal train recordings: source domain as the main set, target as the new condition.
   dcase2020_* has no train clips: each normal test clip is scored by a calibration on
   the machine's other normal test clips (every machine ID: an ID has only 2-6), the
   anomalies by one on all of them; the section scorer needs the model to know the
   machine, which it does not, so it is left out there.

No audio is written into the repository; models and results go to --work.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_asd.audio import read_audio
from edge_asd.calibration.build import Embedded, Settings, calibrate
from edge_asd.dcase import Clip, group_recordings, list_clips
from edge_asd.engines import open_engine
from edge_asd.engines.base import EngineOutput
from edge_asd.errors import UserError
from edge_asd.labels import make_label
from edge_asd.model_file import load_model_info
from edge_asd.scoring.scorer import SCORER_KINDS, FusedScorer, make_scorer
from edge_asd.scoring.twfr import TwfrModel, pool_candidates
from edge_asd.windows import hop_samples, sliding_windows, window_starts
from train.metrics import SectionResult, official_score, section_result

REPO_ROOT = Path(__file__).resolve().parents[1]
SCORERS = ("section", "knn", "twfr", "knn+twfr")
TRAIN_SETS = (
    "sensiml_fan",
    "uav_propeller",
    *(f"dcase2023_{t}" for t in ("ToyCar", "ToyTrain", "bearing", "fan", "gearbox", "slider")),
)
RECORDING_KEYS = ("rec", "flight")
BATCH = 8

log = logging.getLogger("quality")


@dataclass
class Joined:
    """Clips played end to end, and the engine's outputs on every window of them."""

    clips: list[Clip]
    spans: list[tuple[int, int]]  # each clip's [start, end) in samples of the joined signal
    seconds: float
    output: EngineOutput
    starts: np.ndarray  # window starts in samples


def recordings_of(clips: list[Clip]) -> list[list[Clip]]:
    """Clips grouped per recording (`rec` or `flight`, in `seg` order), else one per clip."""
    key = next((k for k in RECORDING_KEYS if any(c.attribute(k) for c in clips)), None)
    if key is None:
        return [[c] for c in clips]
    return list(group_recordings(clips, key).values())


def join(engine, clips: list[Clip], hop: int) -> Joined:
    """Read, join (tiling a recording shorter than a window) and run every window."""
    parts = [read_audio(c.path).mono() for c in clips]
    edges = np.cumsum([0] + [len(p) for p in parts])
    samples = np.concatenate(parts)
    window = engine.info.window_samples
    if len(samples) < window:
        samples = np.resize(samples, window)  # repeats the recording, as calibrate does
    windows = sliding_windows(samples, window, hop)
    outputs = [
        engine.infer(np.ascontiguousarray(windows[i : i + BATCH], dtype=np.float32))
        for i in range(0, len(windows), BATCH)
    ]
    output = EngineOutput(
        np.concatenate([o.embedding for o in outputs]),
        np.concatenate([o.logits for o in outputs]),
        np.concatenate([o.logmel for o in outputs]),
    )
    spans = [(int(a), int(b)) for a, b in itertools.pairwise(edges)]
    starts = window_starts(len(samples), window, hop)
    return Joined(clips, spans, edges[-1] / engine.info.sample_rate, output, starts)


def embedded(joined: Joined) -> Embedded:
    out = joined.output
    name = joined.clips[0].path.name
    return Embedded(name, out.embedding, out.logits, joined.seconds, pool_candidates(out.logmel))


def clip_scores(joined: Joined, scores: np.ndarray, window: int) -> list[float]:
    """Each clip's score: the mean over the windows that overlap it."""
    ends = joined.starts + window
    out = []
    for start, end in joined.spans:
        overlap = (joined.starts < end) & (ends > start)
        out.append(float(scores[overlap].mean() if overlap.any() else scores.mean()))
    return out


def calibrated_scorers(specs, main, new, label, info, hop_seconds) -> dict[str, object]:
    """The scorer `edge-asd calibrate --scorer SPEC` would write, for every spec.

    One calibration with every scorer the specs name: each scorer is fitted on its own
    (its state and honest scores do not depend on the others), so its part of the joint
    calibration, and the fusion of the parts a spec names, is what that spec's own
    calibration holds; only the threshold (not used here) would differ.
    """
    names = [n for n in SCORER_KINDS if any(n in spec.split("+") for spec in specs)]
    settings = Settings(
        machine="benchmark",
        scorer="+".join(names),
        label=label,
        quantile=0.9,
        hop_seconds=hop_seconds,
    )
    result = calibrate(main, new, settings, info)
    cal = result.calibration
    twfr = TwfrModel.from_arrays(cal.arrays) if "twfr" in names else None
    singles = {
        n: make_scorer(n, info.labels, binding=label, bank=cal.bank, twfr=twfr) for n in names
    }
    scorers = {}
    for spec in specs:
        parts = spec.split("+")
        if len(parts) == 1:
            scorers[spec] = singles[spec]
        else:
            standardisers = {p: result.standardisers[p] for p in parts}
            scorers[spec] = FusedScorer(tuple(singles[p] for p in parts), standardisers)
    twfr_params = cal.scorer_params.get("twfr", cal.scorer_params) if twfr else {}
    if twfr_params:
        choice = "r={r:g}, {n_components} component(s), reg {reg_covar:g}".format(**twfr_params)
        scorers["twfr choice"] = choice
    return scorers


def split_domains(recordings: list[Joined]) -> tuple[list[Embedded], list[Embedded]]:
    """Source recordings as the main set, target ones as the new condition (or main when
    there is no source recording)."""
    source = [embedded(r) for r in recordings if r.clips[0].domain == "source"]
    target = [embedded(r) for r in recordings if r.clips[0].domain == "target"]
    return (source, target) if source else (target, [])


def score_section(specs, tests, references, label, info, hop_seconds, cache: dict) -> dict:
    """Per spec: (clip scores, anomaly flags, domains) of a section's test recordings.

    `references(joined)` gives the normal recordings a test recording is scored against;
    `cache` keeps the scorers of each (label, reference recordings).
    """
    window = info.window_samples
    out = {spec: ([], [], []) for spec in specs}
    for joined in tests:
        reference = references(joined)
        key = (label, *(id(r) for r in reference))
        if key not in cache:
            main, new = split_domains(reference)
            cache[key] = calibrated_scorers(specs, main, new, label, info, hop_seconds)
        for spec, (scores, anomalous, domains) in out.items():
            scores += clip_scores(joined, cache[key][spec](joined.output), window)
            anomalous += [c.is_anomaly for c in joined.clips]
            domains += [c.domain for c in joined.clips]
    return out


def evaluate_set(engine, data: Path, name: str, specs, hop_seconds: float) -> dict:
    """Every scorer's per-section metrics and official score on one set."""
    info = engine.info
    hop = hop_samples(hop_seconds, info.sample_rate)
    test = [join(engine, g, hop) for g in recordings_of(list_clips(data, name, "test"))]
    train_clips = []
    if (data / name / "train").is_dir():
        train_clips = [c for c in list_clips(data, name, "train") if not c.is_anomaly]
    train = [join(engine, g, hop) for g in recordings_of(train_clips)]
    if not any(label.startswith(f"{name}/") for label in info.labels):
        specs = [s for s in specs if "section" not in s.split("+")]  # the model lacks it
    sections: dict[str, dict[str, SectionResult]] = {spec: {} for spec in specs}
    cache: dict[tuple, dict] = {}  # per reference set: scorer per spec, and twfr's choice
    for section in sorted({j.clips[0].section for j in test}):
        tests = [j for j in test if j.clips[0].section == section]
        label = make_label(name, section) if any("section" in s for s in specs) else None
        scored = score_section(
            specs, tests, _references(train, test, section), label, info, hop_seconds, cache
        )
        for spec, (scores, flags, domains) in scored.items():
            sections[spec][section] = section_result(scores, flags, domains)
    rows = {spec: _summary(results) for spec, results in sections.items()}
    choices = [c["twfr choice"] for c in cache.values() if "twfr choice" in c]
    if "twfr" in rows:
        rows["twfr"]["choices"] = {c: choices.count(c) for c in sorted(set(choices))}
    return rows


def _references(train: list[Joined], test: list[Joined], section: str):
    """The normal recordings each test recording of `section` is scored against."""
    if train:
        own = [j for j in train if j.clips[0].section == section]
        return lambda joined: own
    normal = [j for j in test if not j.clips[0].is_anomaly]  # every ID of the machine
    return lambda joined: [j for j in normal if j is not joined]


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _summary(sections: dict[str, SectionResult]) -> dict:
    """Per-set figures: arithmetic means over sections and the official harmonic mean."""
    results = list(sections.values())
    return {
        "auc_source": _mean(r.auc_source for r in results),
        "auc_target": _mean(r.auc_target for r in results),
        "pauc": _mean(r.pauc for r in results),
        "official": official_score(results),
        "sections": {s: r.to_dict() for s, r in sections.items()},
    }


def sets_to_score(data: Path) -> list[str]:
    """Sets with both normal and anomalous test clips."""
    names = []
    for folder in sorted(p for p in data.iterdir() if (p / "test").is_dir()):
        clips = list_clips(data, folder.name, "test")
        if any(c.is_anomaly for c in clips) and not all(c.is_anomaly for c in clips):
            names.append(folder.name)
    return names


def train_model(data: Path, work: Path, epochs: int, threads: int) -> Path:
    """`edge-asd-train fit` of the shared model (see the module); returns its model dir."""
    run = work / f"shared_{epochs}ep"
    if (run / "model" / "model.yaml").is_file():
        return run / "model"
    types = [a for t in TRAIN_SETS for a in ("--machine-type", t)]
    command = [
        str(REPO_ROOT / ".venv" / "bin" / "edge-asd-train"),
        *("fit", "--data", str(data), "--out", str(run)),
        *("--config", str(REPO_ROOT / "configs" / "train" / "synthetic_quick.yaml")),
        *("--epochs", str(epochs), "--short-clips", "join", "--join-key", "rec"),
        *("--threads", str(threads), "-q", *types),
    ]
    print("training:", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    return run / "model"


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table(results: dict[str, dict], specs) -> str:
    """The markdown table: one row per set and scorer; the fusion's verdict per set."""
    lines = [
        "| set | scorer | AUC(source) | AUC(target) | pAUC | official | fusion vs best single |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        singles = {s: r["official"] for s, r in rows.items() if "+" not in s}
        best = max(singles, key=lambda s: singles[s] or 0.0) if singles else None
        for spec, row in rows.items():
            verdict = ""
            if "+" in spec and best is not None:
                ok = (row["official"] or 0.0) >= (singles[best] or 0.0) - 1e-9
                verdict = f"{'>=' if ok else 'BELOW'} best single ({best}, {fmt(singles[best])})"
            lines.append(
                f"| {name} | {spec} | {fmt(row['auc_source'])} | {fmt(row['auc_target'])} | "
                f"{fmt(row['pauc'])} | {fmt(row['official'])} | {verdict} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--model", type=Path, help="a model directory to use")
    given.add_argument("--epochs", type=int, help="train the shared model for N epochs first")
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge_asd_quality"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hop-seconds", type=float, default=1.0)
    parser.add_argument("--scorers", default=",".join(SCORERS))
    parser.add_argument("--sets", nargs="+", help="only these sets (default: every one scored)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.data.is_dir():
        print(f"{args.data}: no shared data here; nothing to measure", file=sys.stderr)
        return 2
    model = args.model or train_model(args.data, args.work, args.epochs, args.threads)
    specs = args.scorers.split(",")
    engine = open_engine(model, "onnxruntime", threads=args.threads)
    results: dict[str, dict] = {}
    try:
        for name in args.sets or sets_to_score(args.data):
            began = time.monotonic()
            try:
                results[name] = evaluate_set(engine, args.data, name, specs, args.hop_seconds)
            except UserError as exc:
                print(f"{name}: not scored: {exc}", file=sys.stderr)
                continue
            print(f"{name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    finally:
        engine.close()
    print(f"model: {model} (sha256 {load_model_info(model).onnx_sha256[:12]})")
    print(table(results, specs))
    for name, rows in results.items():
        if "twfr" in rows:
            chosen = "; ".join(f"{c} (x{n})" for c, n in rows["twfr"]["choices"].items())
            print(f"{name}: twfr chose {chosen}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
