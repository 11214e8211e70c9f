"""The Table 1 loop runs every recipe on every machine type of a tree and prints the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_asd.dcase import Clip, parse_clip
from edge_asd.engines import open_engine
from edge_asd.labels import matching_indices
from edge_asd.metrics import section_result
from edge_asd.model_file import load_model_info
from edge_asd.recording import stream_windows
from edge_asd.scoring.offline import window_features_of
from edge_asd.scoring.section import SectionScorer
from edge_asd.synth import write_dcase_tree
from edge_asd.windows import hop_samples
from train.cli import main
from train.config import load_config
from train.report import percent, type_means
from train.table1 import RECIPE_DIR, RECIPES


def test_every_recipe_loads_and_carries_the_reports_numbers():
    for recipe in RECIPES:
        config = load_config(RECIPE_DIR / f"{recipe}.yaml")
        assert config.epochs == 200 and config.learning_rate == 1e-4
        assert sorted(config.reference) == sorted(
            ["ToyCar", "ToyTrain", "bearing", "fan", "gearbox", "slider", "valve"]
        )
        assert all(len(row) == 3 for row in config.reference.values())
    assert load_config(RECIPE_DIR / "stgram_mobilefacenet.yaml").reference["slider"] == [
        89.23, 62.03, 63.06,
    ]  # fmt: skip


def read_scores(scores_csv: Path, machine_type: str) -> tuple[list[Clip], np.ndarray]:
    """The clips (parsed from their names) and scores of an evaluation's DCASE score file."""
    clips, scores = [], []
    for line in scores_csv.read_text().splitlines():
        name, score = line.rsplit(",", 1)
        clips.append(parse_clip(name, machine_type))
        scores.append(float(score))
    return clips, np.array(scores)


def section_scorer_scores(model: Path, label: str, paths: list[Path]) -> np.ndarray:
    """Each clip's uncalibrated `section` score (its windows' mean) by the model at `model`."""
    engine = open_engine(model, threads=1)
    try:
        info = engine.info
        scorer = SectionScorer(label, matching_indices(info.labels, label))
        window = {"window_samples": info.window_samples, "tile_short": True}
        hop = hop_samples(1.0, info.sample_rate)
        features = [
            window_features_of(engine, stream_windows([p], hop_samples=hop, **window))[0]
            for p in paths
        ]
        return np.array([scorer.score(f).mean() for f in features])
    finally:
        engine.close()


def check_row(out: Path, data: Path, recipe: str, machine_type: str, entry: dict) -> None:
    """One row's machine type was trained with the row's network and evaluated with that
    model: its numbers are the metrics of its score files, and those scores are the
    model's own section scores up to the calibration's standardisation (an affine map)."""
    model = out / recipe / machine_type / "model"
    config = load_config(RECIPE_DIR / f"{recipe}.yaml")
    assert load_model_info(model).backbone == config.model.name
    for section, numbers in entry["sections"].items():
        stem = f"{machine_type}_section_{section}_test.csv"
        clips, scores = read_scores(
            out / recipe / "eval_section" / f"anomaly_score_{stem}", machine_type
        )
        anomalous = [c.condition == "anomaly" for c in clips]
        measured = section_result(scores, anomalous, [c.domain for c in clips]).to_dict()
        assert numbers == pytest.approx(measured)
        paths = [data / machine_type / "test" / c.path.name for c in clips]
        own = section_scorer_scores(model, f"{machine_type}/section_{section}", paths)
        assert np.corrcoef(scores, own)[0, 1] == pytest.approx(1.0, abs=1e-4), (recipe, section)


@pytest.mark.slow
def test_table1_trains_and_evaluates_all_rows_on_all_machine_types(tmp_path, capsys):
    data = tmp_path / "data"
    # 5 clips of over half a window a section: what a calibration needs (5 windows)
    write_dcase_tree(data, ("fan", "valve"), (0, 1), train_per_section=5, test_per_domain=1,
                     seconds=6.0)  # fmt: skip
    out = tmp_path / "table1"
    code = main(["table1", "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--batch-size", "4", "-q"])  # fmt: skip
    assert code == 0
    results = json.loads((out / "table1.json").read_text())
    assert sorted(results) == sorted(RECIPES)
    printed = capsys.readouterr().out
    # No detection floor here: Table 1 scores with the `section` scorer, which one epoch
    # (or twenty: official scores 0 to 0.56 measured) leaves at chance on this tree. The
    # floors on trained-and-evaluated models are in test_fit.py and test_evaluate_scorers.py.
    for recipe in RECIPES:
        assert sorted(results[recipe]["machine_types"]) == ["fan", "valve"]
        reference = load_config(RECIPE_DIR / f"{recipe}.yaml").reference
        for machine_type, entry in results[recipe]["machine_types"].items():
            check_row(out, data, recipe, machine_type, entry)
            # printed: the measured harmonic means beside the report's numbers
            means = "".join(f"{percent(v):>8}" for v in type_means(entry))
            report = "".join(f"{v:7.2f}" for v in reference[machine_type])
            assert f"{machine_type:<16}{'hmean':>8}{means}   report:{report}" in printed
