"""model.yaml has a schema: a wrong type or value is one ModelFileError naming the file, the
line and the key; what this runtime cannot run (another rate or window, frames that do not
follow from the window) is refused the same way; a valid one loads into ModelInfo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from edge_asd.errors import ModelFileError
from edge_asd.model_file import FrontEnd, ModelInfo, load_model_info, write_model_info


@pytest.fixture
def model(tiny_model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_model, target)
    return target


def replace_line(model: Path, key: str, text: str) -> int:
    """Replace top-level `key` (its line and its block) with `text`; returns its line."""
    path = model / "model.yaml"
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    end = index + 1
    while end < len(lines) and lines[end].startswith(("- ", "  ")):
        end += 1
    lines[index:end] = [text]
    path.write_text("\n".join(lines) + "\n")
    return index + 1


def refusal(model: Path) -> str:
    with pytest.raises(ModelFileError) as caught:
        load_model_info(model)
    return str(caught.value)


def test_the_tiny_model_loads_into_model_info(model):
    info = load_model_info(model)
    assert isinstance(info, ModelInfo) and isinstance(info.front_end, FrontEnd)
    assert info.labels == ("fan/section_00", "fan/section_01", "fan/section_02")
    assert (info.sample_rate, info.window_samples, info.front_end.frames) == (16000, 160000, 626)
    assert info.onnx_path == str(model / "model.onnx")
    assert info.split is not None and info.split.network.file == "split-network.onnx"


def test_model_info_round_trips_through_model_yaml(model, tmp_path):
    info = load_model_info(model)
    write_model_info(info, model / "model.yaml")
    assert load_model_info(model) == info


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("sample_rate", "sample_rate: '22050'", "sample_rate: '22050': expected a valid integer"),
        ("sample_rate", "sample_rate: 22050", "sample_rate: 22050: expected 16000"),
        (
            "window_samples",
            "window_samples: -5",
            "window_samples: -5: expected greater than or equal to 1",
        ),
        ("window_samples", "window_samples: 8000", "window_samples: 8000: expected 16000 to"),
        ("labels", "labels: fan/section_00", "labels: 'fan/section_00': expected a valid list"),
        ("embedding_dim", "embedding_dim: 32.5", "embedding_dim: 32.5: expected a valid integer"),
        ("onnx_sha256", "onnx_sha256: abc", "onnx_sha256: 'abc': String should match pattern"),
        ("backbone", "backbone: ''", "backbone: '': String should have at least 1 character"),
        ("created_at", "colour: blue", "colour: unknown key"),
    ],
)
def test_a_wrong_value_is_refused_naming_file_line_and_key(model, key, text, message):
    line = replace_line(model, key, text)
    error = refusal(model)
    assert error.startswith(f"{model / 'model.yaml'}:{line}: ")
    assert message in error
    assert error.count("\n") == 0, "one problem, one line"


def test_labels_must_be_unique_and_not_blank(model):
    line = replace_line(model, "labels", "labels: [fan/section_00, fan/section_00, ' ']")
    error = refusal(model)
    assert f"model.yaml:{line}: labels:" in error
    assert "labels must not be blank" in error
    path = model / "model.yaml"
    path.write_text(path.read_text().replace("' ']", "fan/section_01]"))
    assert "labels must be unique; repeated: fan/section_00" in refusal(model)


def test_an_empty_label_is_refused(model):
    replace_line(model, "labels", "labels: ['', fan/section_01, fan/section_02]")
    assert "labels[0]: '': String should have at least 1 character" in refusal(model)


def test_frames_that_do_not_follow_from_window_and_hop_are_refused(model):
    path = model / "model.yaml"
    text = path.read_text()
    path.write_text(text.replace("  frames: 626", "  frames: 313"))
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "frames: 313" in s)
    error = refusal(model)
    assert f"model.yaml:{line}: front_end.frames: 313: expected 626" in error
    assert "hop_length 256" in error


def test_every_problem_is_listed_in_one_error(model):
    replace_line(model, "sample_rate", "sample_rate: '16000'")
    replace_line(model, "embedding_dim", "embedding_dim: 0")
    error = refusal(model)
    assert error.startswith(f"2 problems in {model / 'model.yaml'}:")
    assert "sample_rate: '16000'" in error and "embedding_dim: 0" in error


def test_a_missing_key_names_it(model):
    path = model / "model.yaml"
    data = yaml.safe_load(path.read_text())
    del data["front_end"]["n_mels"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert "front_end.n_mels: missing: required" in refusal(model)


def test_a_split_file_outside_the_model_directory_is_refused(model):
    path = model / "model.yaml"
    path.write_text(path.read_text().replace("file: split-network.onnx", "file: ../x.onnx"))
    assert "split.network.file: '../x.onnx': String should match pattern" in refusal(model)


def test_an_unknown_format_version_says_which_this_runtime_reads(model):
    line = replace_line(model, "format_version", "format_version: 2")
    error = refusal(model)
    assert f"model.yaml:{line}: format_version 2 is not supported (this edge-asd reads 1)" in error


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sample_rate: 16000\nsample_rate: 16000\n", "written twice"),
        ("labels: [unclosed\n", "not valid YAML"),
        ("- a list\n", "expected a mapping of keys"),
    ],
)
def test_a_file_that_is_not_a_model_yaml_is_refused(model, text, message):
    (model / "model.yaml").write_text("format_version: 1\n" + text if "sample" in text else text)
    error = refusal(model)
    assert str(model / "model.yaml") in error and message in error


def test_a_model_onnx_of_another_export_is_refused(model):
    (model / "model.onnx").write_bytes(b"other")
    assert "the two files come from different exports" in refusal(model)


def test_the_committed_tiny_model_stays_small_and_follows_the_contract():
    from tests.harness.model import TINY_MODEL

    assert all(path.stat().st_size < 2_000_000 for path in TINY_MODEL.iterdir())
    info = load_model_info(TINY_MODEL)  # the sha256 of model.onnx included
    assert info.split is not None and info.split.onnx_sha256 == info.onnx_sha256
    assert "make_tiny_model.py" in info.trained_on["made_by"]


def test_a_tab_in_model_yaml_names_its_line_and_column(model):
    # The shared reader of user YAML (edge_asd.config.yaml_file), as for the daemon config.
    path = model / "model.yaml"
    path.write_text(path.read_text().replace("  n_mels: 32\n", "\tn_mels: 32\n"))
    assert refusal(model) == (
        f"{path}:12:1: not valid YAML: a tab character: YAML indents with spaces, never tabs; "
        f"replace the tab with spaces"
    )
