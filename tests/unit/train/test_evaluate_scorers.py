"""`edge-asd-train evaluate --scorer` with the runtime's calibrated scorers: twfr and fusions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_asd.synth import write_dcase_tree
from train.cli import main
from train.evaluate import evaluate_run
from train.metrics import auc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    write_dcase_tree(root, sections=(0,), train_per_section=5, test_per_domain=2)
    return root


def test_twfr_is_calibrated_per_section_and_ranks_generated_faults_above_normals(
    exported_model, tree
):
    (section,) = evaluate_run(tree, exported_model, scorer="twfr", threads=1)
    assert len(section.train_scores) == 6  # five source and one target clip, scored honestly
    assert np.isfinite(section.train_scores).all() and np.isfinite(section.threshold)
    source = [
        (s, c) for s, c in zip(section.scores, section.clips, strict=True) if c.domain == "source"
    ]
    normal = [s for s, c in source if not c.is_anomaly]
    faults = [s for s, c in source if c.is_anomaly]
    assert auc(normal, faults) == 1.0  # the log-mel alone shows an added tone or impacts


def test_the_command_line_evaluates_a_fusion_and_refuses_an_unknown_scorer(
    exported_model, tree, tmp_path, capsys
):
    out = tmp_path / "eval"
    argv = ["evaluate", "--data", str(tree), "--run", str(exported_model), "--threads", "1"]
    assert main([*argv, "--scorer", "knn+twfr", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["machine_types"]["fan"]["sections"]) == {"00"}
    assert 0.0 <= summary["official_score"] <= 1.0
    lines = (out / "anomaly_score_fan_section_00_test.csv").read_text().splitlines()
    assert len(lines) == 8
    capsys.readouterr()
    assert main([*argv, "--scorer", "knn+psychic"]) == 2
    assert "psychic" in capsys.readouterr().err
