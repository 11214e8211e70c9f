"""The Table 1 loop runs every recipe on every machine type of a tree and prints the report."""

from __future__ import annotations

import json

import pytest

from edge_asd.synth import write_dcase_tree
from train.cli import main
from train.config import load_config
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
    for summary in results.values():
        assert sorted(summary["machine_types"]) == ["fan", "valve"]
    printed = capsys.readouterr().out
    assert "report:  69.89  44.18  53.14" in printed  # fan, ST-gram + MobileFaceNet
    assert "report:  67.09  57.22  62.42" in printed  # valve, MobileNetV2
    assert (out / "stgram_mobilenetv3" / "valve" / "model" / "model.onnx").is_file()
