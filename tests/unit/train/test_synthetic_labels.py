"""train_on_synthetic trains on section_attribute labels (2 speed attributes per section)."""

from __future__ import annotations

import yaml

from edge_asd.labels import matching_indices
from train.synthetic import QUICK_CONFIG, train_on_synthetic


def test_synthetic_model_with_section_attribute_labels(tmp_path):
    config = QUICK_CONFIG.with_overrides(epochs=1, batch_size=4)
    result = train_on_synthetic(tmp_path, ("fan",), (0,), config, labels="section_attribute")
    # read as data: this test is about the labels fit writes, not the runtime's loader
    info = yaml.safe_load((result.model_dir / "model.yaml").read_text())
    assert info["labels"] == ["fan/section_00/speed_100", "fan/section_00/speed_118"]
    assert info["label_scheme"] == "section_attribute"
    assert "pseudo_labels" not in info["trained_on"]  # 2 metadata labels: none needed
    assert matching_indices(info["labels"], "fan/section_00") == [0, 1]
