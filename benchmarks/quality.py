"""Detection quality on the real recordings of ../shared/data, through the product's own path.

    .venv/bin/python benchmarks/quality.py (--model MODEL_DIR | --epochs N)
        [--data ../shared/data] [--work DIR] [--threads T] [--specs auto,knn,twfr,section,knn+twfr]
        [--sets NAME ...] [--json FILE]

Prints the tables of docs/quality.md: per set and scorer spec, AUC(source), AUC(target),
pAUC and the official score (edge_asd.metrics, as DCASE computes them); what the default
(`auto`) chose per section; and the default calibration's detectability table per set.

Every number goes through the functions `edge-asd calibrate` and `edge-asd score` run:
normal clips are collected (checked, joined per recording, streamed through the engine,
synthetic faults made from them: train.evaluate.collect_clips, which is
edge_asd.calibration.inputs + edge_asd.calibration.collect), each spec is calibrated on
that data (edge_asd.calibration.build.calibrate, exactly `--scorer SPEC`), and every test
clip is streamed through the engine and scored by the calibrated detector
(edge_asd.scoring.offline, as `edge-asd score`; a clip's score is the mean of its
windows). The collected data is shared by the specs of a section: calibrating twice on
the same recordings would compute the same features twice.

- Sets with normal train clips: each section is calibrated on them (source domain the
  main set, target domain the new condition), as `edge-asd-train evaluate` does.
- dcase2020_* (test clips only): leave one out. Each normal test clip is scored by a
  calibration on the machine type's other normal test clips (every machine ID: an ID has
  only 2-6), the anomalies by one on all of them. Scores are z-units of their calibration,
  so the calibrations' scores can be ranked together.
- With --epochs, one shared model is trained first (`edge-asd-train fit`, CPU) on the
  normal train clips of every set that has them (docs/quality.md says why one shared one).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge_asd.calibration.build import Settings, calibrate
from edge_asd.calibration.detectability import table_lines
from edge_asd.dcase import Clip, list_clips
from edge_asd.engines import open_engine
from edge_asd.errors import UserError
from edge_asd.labels import make_label
from edge_asd.metrics import SectionResult, official_score, section_result
from edge_asd.model_file import load_model_info
from edge_asd.scoring.detector import Detector, single
from edge_asd.scoring.registry import FitContext, FitData, kinds, scorer_kind
from train.evaluate import clip_features, collect_clips, model_knows

REPO_ROOT = Path(__file__).resolve().parents[1]
SPECS = ("auto", *sorted(kinds()), "knn+twfr")  # the default, each kind, one fusion
TRAIN_SETS = (
    "sensiml_fan",
    "uav_propeller",
    *(f"dcase2023_{t}" for t in ("ToyCar", "ToyTrain", "bearing", "fan", "gearbox", "slider")),
)
DECISION_QUANTILE = 0.9  # the threshold does not enter AUC; the DCASE baseline's rule

log = logging.getLogger("quality")


def calibrate_specs(engine, data, specs, label: str | None) -> dict:
    """{spec: build.Result or the reason it could not be calibrated} on the same data."""
    base = Settings(machine="quality", label=label, quantile=DECISION_QUANTILE)
    out = {}
    for spec in specs:
        if spec == "section" and label is None:
            out[spec] = "the model has no label for this machine"
            continue
        try:
            out[spec] = calibrate(data, replace(base, scorer=spec), engine.info)
        except UserError as exc:
            out[spec] = str(exc)
    return out


def candidate_detectors(engine, data, result) -> dict[str, Detector]:
    """Every candidate the default judged, alone, fitted on all windows as calibration
    fits its choice: to see how the synthetic-fault judgement ranks real anomalies."""
    context = FitContext.of_model(engine.info, result.calibration.label)
    fit_data = FitData(data.features, data.window_new_condition)
    return {
        f"[{c.name}]": single(
            scorer_kind(c.kind).fit(fit_data, c.options, context), c.honest.normal
        )
        for c in result.candidates
    }


def score_tests(engine, detectors: dict, tests: list[Clip], into: dict) -> None:
    """Append every test clip's score under each spec (features computed once per clip)."""
    for clip in tests:
        features = clip_features(engine, clip)
        for spec, detector in detectors.items():
            scores, flags, domains = into.setdefault(spec, ([], [], []))
            value = np.nan
            if detector is not None:
                value = float(detector.score(features).mean())
            scores.append(value)
            flags.append(clip.is_anomaly)
            domains.append(clip.domain)


def leave_one_out(test: list[Clip]) -> list[tuple[list[Clip], list[Clip]]]:
    """(reference normals, clips scored) of a test-only set: each normal clip scored by a
    calibration on every other normal clip, the anomalies by one on all of them."""
    normal = [c for c in test if not c.is_anomaly]
    plans = [([c for c in normal if c is not held], [held]) for held in normal]
    return [*plans, (normal, [c for c in test if c.is_anomaly])]


def evaluate_set(engine, data: Path, name: str, specs, study: bool = False) -> dict:
    """Every spec's per-section metrics, official score, choices and detectability."""
    test = list_clips(data, name, "test")
    train = []
    if (data / name / "train").is_dir():
        train = [c for c in list_clips(data, name, "train") if not c.is_anomaly]
    scored: dict[str, dict[str, tuple]] = {}  # section -> spec -> (scores, flags, domains)
    notes: dict[str, list] = {"chosen": [], "detectability": [], "refused": [], "judged": []}
    sections = sorted({c.section for c in test})
    plans = (
        [
            (s, [c for c in train if c.section == s], [c for c in test if c.section == s])
            for s in sections
        ]
        if train
        else [(None, ref, tests) for ref, tests in leave_one_out(test)]
    )
    for section, reference, tests in plans:
        label = make_label(name, section) if section else None
        label = label if label and model_knows(engine, label) else None
        data = collect_clips(engine, reference)
        calibrations = calibrate_specs(engine, data, specs, label)
        _note(notes, section or "fold", calibrations)
        detectors = {
            spec: None if isinstance(r, str) else r.calibration.detector
            for spec, r in calibrations.items()
        }
        if study and not isinstance(calibrations.get("auto"), str):
            detectors.update(candidate_detectors(engine, data, calibrations["auto"]))
            _judgements(notes, calibrations["auto"])
        into: dict[str, tuple] = {}
        score_tests(engine, detectors, tests, into)
        for spec, columns in into.items():
            for sec in sorted({c.section for c in tests}):
                mine = [i for i, c in enumerate(tests) if c.section == sec]
                part = scored.setdefault(sec, {}).setdefault(spec, ([], [], []))
                for column, values in zip(part, columns, strict=True):
                    column.extend(values[i] for i in mine)
    names = next(iter(scored.values()), {}).keys()
    rows = {spec: _summary({s: _result(v[spec]) for s, v in scored.items()}) for spec in names}
    return {"rows": rows, **notes}


def _judgements(notes: dict, result) -> None:
    """Each candidate's synthetic-fault objective, to set beside its real score."""
    notes["judged"].append({f"[{n}]": j.objective for n, j in result.selection.singles.items()})


def _result(columns) -> SectionResult | None:
    scores, flags, domains = (np.asarray(c) for c in columns)
    if np.isnan(scores).any():
        return None
    return section_result(scores, flags, domains)


def _note(notes: dict, where: str, calibrations: dict) -> None:
    for spec, result in calibrations.items():
        if isinstance(result, str):
            notes["refused"].append(f"{where} {spec}: {result}")
        elif spec == "auto":
            sel = result.calibration.selection
            chosen = f" {sel['combiner']} ".join(sel["chosen"])
            notes["chosen"].append(f"{where}: {chosen} (objective {sel['objective']:.3f})")
            notes["detectability"].append(f"{where}:\n" + "\n".join(table_lines(result.rows)))


def _summary(sections: dict[str, SectionResult | None]) -> dict:
    results = list(sections.values())
    if any(r is None for r in results):
        return {"auc_source": None, "auc_target": None, "pauc": None, "official": None}

    def mean(values) -> float | None:
        present = [v for v in values if v is not None]
        return float(np.mean(present)) if present else None

    return {
        "auc_source": mean(r.auc_source for r in results),
        "auc_target": mean(r.auc_target for r in results),
        "pauc": mean(r.pauc for r in results),
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


def study_table(results: dict[str, dict]) -> str:
    """Per set, the candidates by synthetic-fault objective with their real official score,
    and the rank correlation of the two (sections of a set averaged)."""
    from scipy.stats import spearmanr

    lines = [
        "| set | candidates | Spearman(objective, real) | real of the best by objective | "
        "best real | median real |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        if not result["judged"]:
            continue
        objective = {
            k: float(np.mean([j[k] for j in result["judged"] if k in j]))
            for k in result["judged"][0]
        }
        real = {k: result["rows"][k]["official"] for k in objective if k in result["rows"]}
        keys = [k for k in objective if real.get(k) is not None]
        if len(keys) < 3:
            continue
        rho = spearmanr([objective[k] for k in keys], [real[k] for k in keys]).statistic
        best = max(keys, key=lambda k: objective[k])
        values = [real[k] for k in keys]
        lines.append(
            f"| {name} | {len(keys)} | {rho:.2f} | {fmt(real[best])} ({best}) | "
            f"{fmt(max(values))} | {fmt(float(np.median(values)))} |"
        )
    return "\n".join(lines)


def table(results: dict[str, dict], study: bool = False) -> str:
    """The markdown table: one row per set and spec (candidates only with `study`)."""
    lines = [
        "| set | scorer | AUC(source) | AUC(target) | pAUC | official |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for spec, row in result["rows"].items():
            if spec.startswith("[") and not study:
                continue
            lines.append(
                f"| {name} | {spec} | {fmt(row['auc_source'])} | {fmt(row['auc_target'])} | "
                f"{fmt(row['pauc'])} | {fmt(row['official'])} |"
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
    parser.add_argument("--specs", default=",".join(SPECS))
    parser.add_argument("--sets", nargs="+", help="only these sets (default: every one scored)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--study",
        action="store_true",
        help="also score every candidate alone: its real official score beside its "
        "synthetic-fault objective (how well the choice by synthetic faults ranks them)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if not args.data.is_dir():
        print(f"{args.data}: no shared data here; nothing to measure", file=sys.stderr)
        return 2
    model = args.model or train_model(args.data, args.work, args.epochs, args.threads)
    specs = args.specs.split(",")
    engine = open_engine(model, "onnxruntime", threads=args.threads)
    results: dict[str, dict] = {}
    try:
        for name in args.sets or sets_to_score(args.data):
            began = time.monotonic()
            results[name] = evaluate_set(engine, args.data, name, specs, args.study)
            print(f"{name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    finally:
        engine.close()
    print(f"model: {model} (sha256 {load_model_info(model).onnx_sha256[:12]})")
    print(table(results, study=False))
    if args.study:
        print(study_table(results))
    for name, result in results.items():
        print(f"\n{name}: the default chose " + "; ".join(result["chosen"]))
        for note in result["refused"]:
            print(f"  refused: {note}")
        print("\n".join(result["detectability"][:1]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
