"""The trained_model fixture: trained on generated sound, it tells faults from normal."""

from __future__ import annotations

import numpy as np

from edge_asd.model_file import load_model_info
from train.config import load_config
from train.evaluate import evaluate_run
from train.metrics import auc
from train.synthetic import QUICK_CONFIG
from train.table1 import RECIPE_DIR


def source_aucs(sections) -> list[float]:
    """Per section: AUC of its source-domain faults against its source-domain normals."""
    values = []
    for s in sections:
        source = [(v, c) for v, c in zip(s.scores, s.clips, strict=True) if c.domain == "source"]
        normal = [v for v, c in source if not c.is_anomaly]
        values.append(auc(normal, [v for v, c in source if c.is_anomaly]))
    return values


def test_trained_model_scores_generated_faults_above_normal_sound(trained_model):
    info = load_model_info(trained_model)
    assert info.labels == ("fan/section_00", "fan/section_01", "fan/section_02")
    assert info.window_samples == 160000
    data = trained_model.parent.parent / "data"
    sections = evaluate_run(data, trained_model, scorer="knn", threads=2)
    aucs = source_aucs(sections)
    print("knn AUC of generated faults vs normal, source domain, per section:", aucs)
    assert np.mean(aucs) >= 0.9
    assert min(aucs) >= 0.75


def test_quick_recipe_file_matches_the_quick_config():
    assert load_config(RECIPE_DIR / "synthetic_quick.yaml") == QUICK_CONFIG
