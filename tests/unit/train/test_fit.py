"""`fit`, `export` and `evaluate` end to end on small generated trees (2 s windows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_asd.audio import SAMPLE_RATE
from edge_asd.errors import EXIT_INPUT, UserError
from edge_asd.model_file import load_model_info
from edge_asd.synth import write_dcase_tree
from train.checkpoint import load
from train.cli import main
from train.config import TrainConfig
from train.fit import fit
from train.model import ModelConfig

WINDOW_SAMPLES = 2 * SAMPLE_RATE
OFFICIAL_FLOOR = 0.9  # see test_command_line_fits_evaluates_and_exports


def small_config(**overrides) -> TrainConfig:
    settings = {"epochs": 1, "batch_size": 4, **overrides}
    return TrainConfig(model=ModelConfig(window_samples=WINDOW_SAMPLES), **settings)


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dcase")
    write_dcase_tree(
        # 5 source clips a section: calibration needs 5 windows to hold out and judge
        root,
        ("fan", "pump"),
        (0, 1),
        train_per_section=5,
        test_per_domain=1,
        seconds=2.0,
    )
    return root


def test_fit_checkpoints_every_epoch_and_resume_goes_on(small_tree, tmp_path):
    run = tmp_path / "run"
    (first,) = fit(small_tree, run, small_config(), ["fan"], progress=False)
    assert load(run / "checkpoint.pt").epoch == 1
    assert load_model_info(first.model_dir).labels == ("fan/section_00", "fan/section_01")
    with pytest.raises(UserError, match="already holds a checkpoint"):
        fit(small_tree, run, small_config(), ["fan"], progress=False)
    (second,) = fit(small_tree, run, small_config(epochs=2), ["fan"], resume=True, progress=False)
    assert second.epochs == 2 and load(run / "checkpoint.pt").epoch == 2
    log_lines = (run / "train_log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log_lines] == ["epoch", "1", "2"]
    assert load_model_info(second.model_dir).trained_on["epochs"] == 2
    with pytest.raises(UserError, match="other labels"):
        fit(small_tree, run, small_config(epochs=3), ["pump"], resume=True, progress=False)


def test_section_scheme_trains_one_model_per_machine_type(small_tree, tmp_path):
    results = fit(small_tree, tmp_path / "run", small_config(), progress=False)
    assert [r.run_dir.name for r in results] == ["fan", "pump"]
    pump = load_model_info(tmp_path / "run" / "pump" / "model")
    assert pump.labels == ("pump/section_00", "pump/section_01")


def test_type_section_scheme_trains_one_model_across_types(small_tree, tmp_path):
    (result,) = fit(
        small_tree, tmp_path / "run", small_config(labels="type_section"), progress=False
    )
    labels = load_model_info(result.model_dir).labels
    assert labels == ("fan/section_00", "fan/section_01", "pump/section_00", "pump/section_01")


def test_validation_loss_selection_exports_the_best_heldout_epoch(small_tree, tmp_path):
    config = small_config(epochs=2, validation_fraction=0.5, select="validation_loss")
    (result,) = fit(small_tree, tmp_path / "run", config, ["fan"], progress=False)
    best = load(tmp_path / "run" / "best.pt")
    trained_on = load_model_info(result.model_dir).trained_on
    assert trained_on["exported_epoch"] == best.best_epoch
    assert trained_on["selection"] == "validation_loss"
    heldout = [line.split(",")[2] for line in (tmp_path / "run" / "train_log.csv").open()][1:]
    assert all(value != "" for value in heldout)


def test_command_line_fits_evaluates_and_exports(small_tree, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump({"model": {"window_samples": WINDOW_SAMPLES}, "epochs": 1, "batch_size": 4})
    )
    run = tmp_path / "run"
    args = ["--data", str(small_tree), "--machine-type", "fan", "--config", str(recipe)]
    assert main(["fit", *args, "--out", str(run), "-q"]) == 0
    for scorer in ("auto", "twfr"):  # a 1-epoch model's section and knn may be refused as blind
        assert (
            main(["evaluate", "--data", str(small_tree), "--run", str(run), "--scorer", scorer])
            == 0
        )
        out = run / f"eval_{scorer}"
        summary = json.loads((out / "summary.json").read_text())
        sections = summary["machine_types"]["fan"]["sections"]
        assert set(sections) == {"00", "01"}
        assert set(sections["00"]) == {"auc_source", "auc_target", "pauc"}
        # The generated faults (a tone, impacts, a harmonic shift, rubbing over the whole
        # clip) show in the log-mel that twfr reads, and auto picks among scorers by
        # synthetic faults. With one normal and one fault clip a domain, one fault ranked
        # below a normal puts an AUC at 0 and the harmonic mean far under the floor: 0.9
        # says every fault outranks every normal clip (a blind scorer gets about 0.5).
        assert summary["official_score"] >= OFFICIAL_FLOOR, sections
        scores = (out / "anomaly_score_fan_section_00_test.csv").read_text().splitlines()
        assert len(scores) == 4 and scores[0].startswith("section_00_")
        decisions = (out / "decision_result_fan_section_00_test.csv").read_text().splitlines()
        assert {line.rsplit(",", 1)[1] for line in decisions} <= {"0", "1"}
        assert (out / "roc.png").stat().st_size > 0
    assert "official score" in capsys.readouterr().out
    before = load_model_info(run / "model").onnx_sha256
    assert main(["export", "--run", str(run)]) == 0
    assert load_model_info(run / "model").onnx_sha256 == before  # same weights, same graph


def test_command_line_says_what_is_wrong_and_exits_non_zero(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["fit", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    assert code == EXIT_INPUT
    assert "no <machine_type>/train" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nlearning_rat: 0.1\n")
    code = main(
        ["fit", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--config", str(bad)]
    )
    assert code == 2
    assert "bad.yaml:2: learning_rat: unknown key (did you mean" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_trains_one_model_with_two_processes(small_tree, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"model": {"window_samples": WINDOW_SAMPLES}, "epochs": 2}))
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "train.cli", "fit", "--data", str(small_tree), "--machine-type", "fan",
        "--config", str(recipe), "--out", str(run), "--batch-size", "2", "-q",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600,
                          cwd=Path(__file__).resolve().parents[3])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert load(run / "checkpoint.pt").epoch == 2
    log_lines = (run / "train_log.csv").read_text().splitlines()
    assert len(log_lines) == 3  # a header and one line per epoch: rank 0 alone writes
    assert load_model_info(run / "model").labels == ("fan/section_00", "fan/section_01")


def test_export_prints_no_library_noise_and_still_writes_the_model(small_tree, tmp_path):
    # torch.onnx.export, left alone, prints four "torchvision is not installed" lines, a
    # FutureWarning from torch's internals and (at INFO) a line per optimiser pass
    run = tmp_path / "run"
    fit(small_tree, run, small_config(), ["fan"], progress=False)
    (run / "model" / "model.onnx").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "train.cli", "export", "--run", str(run)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"exported {run / 'model'}" in result.stdout
    assert (run / "model" / "model.onnx").stat().st_size > 0
    for noise in ("torchvision", "Warning", "onnxscript", "onnx_ir"):
        assert noise not in result.stderr, result.stderr
