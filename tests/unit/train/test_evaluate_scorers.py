"""`edge-asd-train evaluate` on the product's path: each section calibrated as `edge-asd
calibrate` calibrates a machine, its test clips scored as `edge-asd score` scores a file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_asd.metrics import auc
from edge_asd.synth import write_dcase_tree
from train.cli import main
from train.evaluate import evaluate_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    write_dcase_tree(root, sections=(0,), train_per_section=5, test_per_domain=2)
    return root


def test_twfr_is_calibrated_per_section_and_ranks_generated_faults_above_normals(tiny_model, tree):
    (section,) = evaluate_run(tree, tiny_model, scorer="twfr", threads=1)
    result = section.calibration
    # five source clips (the main set) and one target clip (the new condition), one
    # window each, scored honestly
    assert result.calibration.n_windows == 6 and result.calibration.n_recordings == 6
    assert np.isfinite(np.concatenate(result.runs)).all() and np.isfinite(section.threshold)
    assert result.calibration.scorer == "twfr"
    assert section.threshold == result.calibration.threshold
    source = [
        (s, c) for s, c in zip(section.scores, section.clips, strict=True) if c.domain == "source"
    ]
    normal = [s for s, c in source if not c.is_anomaly]
    faults = [s for s, c in source if c.is_anomaly]
    assert auc(normal, faults) == 1.0  # the log-mel alone shows an added tone or impacts


def test_a_test_clip_is_scored_by_the_calibrated_detector_as_edge_asd_score_would(tiny_model, tree):
    from edge_asd.engines import open_engine
    from edge_asd.recording import stream_windows
    from edge_asd.scoring.offline import score_windows

    (section,) = evaluate_run(tree, tiny_model, scorer="twfr", threads=1)
    clip = section.clips[0]
    engine = open_engine(tiny_model, threads=1)
    try:
        window = engine.info.window_samples
        batches = stream_windows([clip.path], window_samples=window, hop_samples=16000)
        scores = score_windows(engine, section.calibration.calibration.detector, batches)
    finally:
        engine.close()
    assert section.scores[0] == pytest.approx(scores.scores.mean(), rel=1e-6)


def test_the_command_line_evaluates_a_fusion_and_refuses_an_unknown_scorer(
    tiny_model, tree, tmp_path, capsys
):
    out = tmp_path / "eval"
    argv = ["evaluate", "--data", str(tree), "--run", str(tiny_model), "--threads", "1"]
    assert main([*argv, "--scorer", "knn+twfr", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["machine_types"]["fan"]["sections"]) == {"00"}
    # twfr alone ranks every generated fault above every normal clip here (1.0, see the
    # first test); knn alone, on the tiny model's random embeddings, reaches about 0.68.
    # A fusion above 0.8 shows twfr's ranking survives the combination.
    assert summary["official_score"] >= 0.8, summary["machine_types"]
    lines = (out / "anomaly_score_fan_section_00_test.csv").read_text().splitlines()
    assert len(lines) == 8
    capsys.readouterr()
    assert main([*argv, "--scorer", "knn+psychic"]) == 2
    assert "psychic" in capsys.readouterr().err
