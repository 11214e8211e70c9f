"""A machine type with one label trains on pseudo-labels, and nothing untrained is exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from edge_asd.audio import SAMPLE_RATE
from edge_asd.errors import EXIT_USAGE, UserError
from edge_asd.labels import matching_indices
from edge_asd.synth import render_clip, write_dcase_tree
from train import pseudo_labels as pseudo
from train.checkpoint import load
from train.cli import main
from train.config import TrainConfig
from train.fit import fit, require_learning
from train.model import ASDModel

WINDOW_SAMPLES = 2 * SAMPLE_RATE  # for the transforms; models keep the runtime's 10 s window


def small_config(**overrides) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 4, **overrides})


def model_yaml(model_dir: Path) -> dict:
    # read as data: this test is about what fit writes, not about the runtime's loader
    return yaml.safe_load((model_dir / "model.yaml").read_text())


@pytest.fixture(scope="module")
def one_section_tree(tmp_path_factory) -> Path:
    """One machine type, one section: a single `section` label (the first-shot case).

    4 training clips of 10 s (3 source, 1 target): one batch of 4 windows per epoch."""
    root = tmp_path_factory.mktemp("one_section")
    write_dcase_tree(root, ("fan",), (0,), train_per_section=3, test_per_domain=1)
    return root


def test_pseudo_labels_never_fall_under_a_machines_label():
    labels = pseudo.expand_labels(["fan/section_00", "fan/section_01"])
    assert len(labels) == 2 * len(pseudo.TRANSFORMS)
    assert "fan~faster/section_00" in labels
    assert matching_indices(labels, "fan/section_00") == [labels.index("fan/section_00")]
    assert matching_indices(labels, "fan") == [
        labels.index("fan/section_00"),
        labels.index("fan/section_01"),
    ]
    with_attributes = pseudo.expand_labels(["fan/section_00/speed_100", "fan/section_00/speed_118"])
    assert [with_attributes[i] for i in matching_indices(with_attributes, "fan/section_00")] == [
        "fan/section_00/speed_100",
        "fan/section_00/speed_118",
    ]
    assert len(matching_indices(with_attributes, "fan/section_00/speed_100")) == 1


def test_transforms_rotate_with_the_epoch_and_keep_the_window():
    names = list(pseudo.TRANSFORMS)
    assert [pseudo.transform_of(i, 0) for i in range(len(names))] == names
    assert [pseudo.transform_of(0, e) for e in range(len(names))] == names
    samples = render_clip("fan", 0, "source", 3.0, seed=1)
    windows = {
        name: pseudo.transformed_window(
            samples, WINDOW_SAMPLES, "tile", np.random.default_rng(7), name
        )
        for name in names
    }
    for name, window in windows.items():
        assert window.shape == (WINDOW_SAMPLES,) and window.dtype == np.float32, name
    identity = windows["identity"]
    np.testing.assert_array_equal(windows["reversed"], identity[::-1])
    rms = np.sqrt(np.mean(identity**2))
    assert np.sqrt(np.mean(windows["tilted"] ** 2)) == pytest.approx(rms, rel=1e-4)
    for name in ("faster", "slower", "tilted"):
        assert not np.allclose(windows[name], identity), name
    again = pseudo.transformed_window(
        samples, WINDOW_SAMPLES, "tile", np.random.default_rng(7), "faster"
    )
    np.testing.assert_array_equal(again, windows["faster"])


def test_pseudo_labels_switch_on_below_two_labels_and_off_refuses():
    assert pseudo.wanted("auto", ["fan/section_00"], "section", ["fan"])
    assert not pseudo.wanted("auto", ["fan/section_00", "fan/section_01"], "section", ["fan"])
    assert pseudo.wanted("on", ["fan/section_00", "fan/section_01"], "section", ["fan"])
    assert not pseudo.wanted("off", ["fan/section_00", "fan/section_01"], "section", ["fan"])
    with pytest.raises(UserError, match="ArcFace over one class learns nothing") as caught:
        pseudo.wanted("off", ["fan/section_00"], "section", ["fan"])
    assert "--pseudo-labels auto" in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE


def test_an_epoch_that_learned_nothing_is_refused():
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(UserError, match="loss is exactly 0 and the weights did not change"):
        require_learning(0.0, before, model, ["fan/section_00"], 1)
    with pytest.raises(UserError, match="the weights did not change"):
        require_learning(1.5, before, model, ["a", "b"], 1)
    with torch.no_grad():
        model.bias += 1.0
    with pytest.raises(UserError, match="the loss is nan"):
        require_learning(float("nan"), before, model, ["a", "b"], 1)
    require_learning(1.5, before, model, ["a", "b"], 1)  # learned: no error


def test_one_label_trains_on_pseudo_labels_and_the_weights_move(one_section_tree, tmp_path):
    run = tmp_path / "run"
    (result,) = fit(one_section_tree, run, small_config(), progress=False)
    info = model_yaml(result.model_dir)
    assert info["labels"] == pseudo.expand_labels(["fan/section_00"])
    assert matching_indices(info["labels"], "fan/section_00") == [0]
    record = info["trained_on"]["pseudo_labels"]
    assert record["setting"] == "auto" and record["metadata_labels"] == 1
    assert list(record["transforms"]) == list(pseudo.TRANSFORMS)
    log_lines = (run / "train_log.csv").read_text().splitlines()[1:]
    losses = [float(line.split(",")[1]) for line in log_lines]
    print("pseudo-label losses per epoch:", losses)
    assert len(losses) == 2 and min(losses) > 0.0
    torch.manual_seed(0)  # fit's seed: the weights it started from
    start = ASDModel(small_config().model, len(info["labels"])).state_dict()
    trained = load(run / "checkpoint.pt").model_state
    assert any(not torch.equal(start[k], trained[k]) for k in start if "weight" in k)


def test_one_label_with_pseudo_labels_off_is_refused_before_training(one_section_tree, tmp_path):
    with pytest.raises(UserError, match="ArcFace over one class learns nothing"):
        fit(one_section_tree, tmp_path / "run", small_config(pseudo_labels="off"), progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_command_line_refuses_one_label_without_pseudo_labels(one_section_tree, tmp_path, capsys):
    code = main(
        ["fit", "--data", str(one_section_tree), "--out", str(tmp_path / "run"),
         "--pseudo-labels", "off", "-q"]
    )  # fmt: skip
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "fan: only 1 label (fan/section_00) under --labels section" in err
    assert "pseudo_labels is off" in err
