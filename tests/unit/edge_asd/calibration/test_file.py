"""The calibration file: round trip, owner-only and atomic writes, and refusals."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_asd.calibration.file import (
    Calibration,
    arrays_path,
    load_calibration,
    save_calibration,
)
from edge_asd.errors import ModelFileError
from edge_asd.model_file import FrontEnd, ModelInfo

SHA = "a" * 64


def model_info(sha: str = SHA, onnx_path: str = "/models/fan/model.onnx") -> ModelInfo:
    return ModelInfo(
        format_version=1,
        sample_rate=16000,
        window_samples=160000,
        embedding_dim=4,
        labels=("fan/section_00", "fan/section_01"),
        front_end=FrontEnd(n_fft=1024, hop_length=512, n_mels=128, frames=313),
        backbone="mobilefacenet",
        label_scheme="section",
        onnx_sha256=sha,
        onnx_path=onnx_path,
    )


def knn_calibration(**changes) -> Calibration:
    bank = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    calibration = Calibration(
        machine="fan1",
        label="fan/section_00",
        scorer="knn",
        threshold=0.42,
        k=3,
        n=5,
        m_close=5,
        hop_seconds=1.0,
        model_sha256=SHA,
        method="gamma_false_alarms",
        method_params={"false_alarms_per_day": 1.0, "gamma": {"shape": 2.0}},
        n_windows=900,
        n_recordings=3,
        audio_seconds=930.0,
        expected_false_alarms_per_day=1.0,
        scorer_params={"n_centres": 6},
        score_stats={"mean": 0.2, "std": 0.05},
        bank=bank,
    )
    return replace(calibration, **changes)


def test_a_calibration_round_trips_with_its_bank(tmp_path: Path):
    original = knn_calibration()
    save_calibration(original, tmp_path / "calibration.yaml")
    loaded = load_calibration(tmp_path / "calibration.yaml", model_info())
    assert loaded == original  # every field but the arrays
    np.testing.assert_array_equal(loaded.bank, original.bank)
    assert loaded.bank.dtype == np.float32
    assert (tmp_path / "calibration.npz").is_file()


def test_other_named_arrays_travel_with_the_bank(tmp_path: Path):
    extra = {"twfr_means": np.arange(8.0).reshape(2, 4)}
    save_calibration(knn_calibration(arrays=extra), tmp_path / "c.yaml")
    loaded = load_calibration(tmp_path / "c.yaml", model_info())
    np.testing.assert_array_equal(loaded.arrays["twfr_means"], extra["twfr_means"])


def test_a_section_calibration_needs_no_arrays_file(tmp_path: Path):
    save_calibration(knn_calibration(scorer="section", bank=None), tmp_path / "c.yaml")
    assert not (tmp_path / "c.npz").exists()
    loaded = load_calibration(tmp_path / "c.yaml", model_info())
    assert loaded.bank is None and loaded.scorer == "section"


def test_files_are_readable_by_their_owner_only(tmp_path: Path):
    save_calibration(knn_calibration(), tmp_path / "c.yaml")
    for path in (tmp_path / "c.yaml", tmp_path / "c.npz"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_calibration_for_another_model_is_refused_naming_both_files(tmp_path: Path):
    save_calibration(knn_calibration(), tmp_path / "c.yaml")
    other = model_info(sha="b" * 64, onnx_path="/models/pump/model.onnx")
    with pytest.raises(ModelFileError) as caught:
        load_calibration(tmp_path / "c.yaml", other)
    message = str(caught.value)
    assert str(tmp_path / "c.yaml") in message
    assert "/models/pump/model.onnx" in message
    assert "aaaaaaaaaaaa" in message and "bbbbbbbbbbbb" in message


def test_a_bank_from_another_calibration_is_refused(tmp_path: Path):
    save_calibration(knn_calibration(), tmp_path / "a.yaml")
    save_calibration(knn_calibration(bank=np.ones((2, 4), np.float32)), tmp_path / "b.yaml")
    os.replace(tmp_path / "b.npz", tmp_path / "a.npz")
    with pytest.raises(ModelFileError, match="does not belong to"):
        load_calibration(tmp_path / "a.yaml", model_info())


def test_a_missing_bank_is_refused(tmp_path: Path):
    save_calibration(knn_calibration(), tmp_path / "c.yaml")
    (tmp_path / "c.npz").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_calibration(tmp_path / "c.yaml", model_info())


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        ({"format_version": 99}, "format_version 99"),
        ({"threshold": "high"}, "threshold"),
        ({"k": 6}, "k=6"),
        ({"label": "pump/section_00"}, "matches none"),
        ({"scorer": "section", "label": None}, "needs a label"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_an_inconsistent_file_names_itself_and_the_problem(tmp_path, edit, complaint):
    path = tmp_path / "c.yaml"
    save_calibration(knn_calibration(), path)
    data = yaml.safe_load(path.read_text())
    data.update(edit)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelFileError, match=complaint) as caught:
        load_calibration(path, model_info())
    assert str(path) in str(caught.value)


def test_a_file_missing_a_key_is_refused(tmp_path: Path):
    path = tmp_path / "c.yaml"
    save_calibration(knn_calibration(), path)
    data = yaml.safe_load(path.read_text())
    del data["threshold"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelFileError, match="threshold"):
        load_calibration(path, model_info())


def test_a_bank_of_the_wrong_dimension_is_refused(tmp_path: Path):
    save_calibration(knn_calibration(bank=np.ones((3, 7), np.float32)), tmp_path / "c.yaml")
    with pytest.raises(ModelFileError, match=r"bank shape \(3, 7\)"):
        load_calibration(tmp_path / "c.yaml", model_info())


def test_garbage_and_missing_files_are_model_file_errors(tmp_path: Path):
    with pytest.raises(ModelFileError, match="no such calibration file"):
        load_calibration(tmp_path / "absent.yaml", model_info())
    (tmp_path / "bad.yaml").write_text("threshold: [unclosed\n")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_calibration(tmp_path / "bad.yaml", model_info())
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ModelFileError, match="mapping"):
        load_calibration(tmp_path / "list.yaml", model_info())


def test_a_failed_write_leaves_the_old_files_and_no_temporary_ones(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    save_calibration(knn_calibration(threshold=0.1), path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_calibration(knn_calibration(threshold=0.9), path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert load_calibration(path, model_info()).threshold == 0.1


def test_the_arrays_lie_beside_the_yaml():
    assert arrays_path("/etc/edge-asd/fan1.yaml") == Path("/etc/edge-asd/fan1.npz")
