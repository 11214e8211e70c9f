"""The calibration file: round trip, owner-only and atomic writes, and refusals."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import textwrap
from dataclasses import fields, replace
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
from edge_asd.scoring.detector import Component, Detector, Standardiser
from edge_asd.scoring.features import POOLING_R, WindowFeatures
from edge_asd.scoring.knn import KnnScorer
from edge_asd.scoring.registry import FitContext, FitData
from edge_asd.scoring.section import SectionScorer
from edge_asd.scoring.twfr import TwfrScorer

SHA = "a" * 64
N_MELS = 16


def model_info(sha: str = SHA, onnx_path: str = "/models/fan/model.onnx") -> ModelInfo:
    return ModelInfo(
        format_version=1,
        sample_rate=16000,
        window_samples=160000,
        embedding_dim=4,
        labels=("fan/section_00", "fan/section_01"),
        front_end=FrontEnd(n_fft=1024, hop_length=512, n_mels=N_MELS, frames=313),
        backbone="mobilefacenet",
        label_scheme="section",
        onnx_sha256=sha,
        onnx_path=onnx_path,
    )


def knn_detector(bank: np.ndarray | None = None) -> Detector:
    if bank is None:
        bank = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    return Detector((Component(KnnScorer(bank, 6), Standardiser(0.2, 0.05)),))


def twfr_scorer() -> TwfrScorer:
    rng = np.random.default_rng(1)
    n = 30
    features = WindowFeatures(
        np.zeros((n, 4), np.float32),
        np.zeros((n, 2), np.float32),
        rng.normal(size=(n, len(POOLING_R), N_MELS)).astype(np.float32),
    )
    options = {"r": 0.5, "n_components": 2, "reg_covar": 0.1, "level_norm": True}
    return TwfrScorer.fit(FitData(features), options, FitContext(model_info().labels))


def calibration(**changes) -> Calibration:
    values = dict(
        machine="fan1", label="fan/section_00", model_sha256=SHA, detector=knn_detector(),
        threshold=4.2, k=3, n=5, m_close=5, hop_seconds=1.0, method="gamma_false_alarms",
        method_params={"false_alarms_per_day": 1.0, "gamma": {"shape": 2.0}},
        expected_false_alarms_per_day=1.0, n_windows=900, n_recordings=3, audio_seconds=930.0,
        score_stats={"mean": 0.0, "std": 1.0},
        level={"level_db": -12.5, "band_levels_db": [-10.0] * 8},
        selection={"asked": "auto", "chosen": ["knn(16 centres)"], "objective": 0.9},
        detectability={"tone": {"levels_db": [-30.0, -5.0], "event_probability": [0.1, 1.0],
                                "windows_above": [0.05, 1.0], "detected_from_db": -5.0}},
    )  # fmt: skip
    return replace(Calibration(**values), **changes)


def assert_same(loaded: Calibration, original: Calibration) -> None:
    """Every field equal, the detector by its state (parameters and arrays)."""
    for field in fields(Calibration):
        if field.name != "detector":
            assert getattr(loaded, field.name) == getattr(original, field.name), field.name
    got, got_arrays = loaded.detector.to_state()
    want, want_arrays = original.detector.to_state()
    assert got == want
    assert sorted(got_arrays) == sorted(want_arrays)
    for name, array in want_arrays.items():
        np.testing.assert_array_equal(got_arrays[name], array)
        assert got_arrays[name].dtype == array.dtype, name


def test_a_calibration_round_trips_with_its_bank_level_selection_and_table(tmp_path: Path):
    original = calibration()
    save_calibration(original, tmp_path / "calibration.yaml")
    loaded = load_calibration(tmp_path / "calibration.yaml", model_info())
    assert_same(loaded, original)
    assert loaded.scorer == "knn" and loaded.level_db == -12.5
    assert (tmp_path / "calibration.npz").is_file()
    written = yaml.safe_load((tmp_path / "calibration.yaml").read_text())
    assert written["format_version"] == 2 and written["detector"]["combiner"] == "mean"
    assert written["level"]["level_db"] == -12.5 and "tone" in written["detectability"]


def test_a_fused_detector_round_trips_and_scores_as_it_was_made(tmp_path: Path):
    section = SectionScorer("fan/section_00", [0], "max")
    detector = Detector(
        (
            knn_detector().components[0],
            Component(twfr_scorer(), Standardiser(-30.0, 4.0)),
            Component(section, Standardiser(1.0, 0.5)),
        ),
        "max",
    )
    original = calibration(detector=detector)
    save_calibration(original, tmp_path / "c.yaml")
    loaded = load_calibration(tmp_path / "c.yaml", model_info())
    assert_same(loaded, original)
    assert loaded.scorer == "knn+twfr+section"
    rng = np.random.default_rng(2)
    windows = WindowFeatures(
        rng.normal(size=(5, 4)).astype(np.float32),
        rng.normal(size=(5, 2)).astype(np.float32),
        rng.normal(size=(5, len(POOLING_R), N_MELS)).astype(np.float32),
    )
    np.testing.assert_array_equal(loaded.detector.score(windows), detector.score(windows))


def test_a_section_calibration_needs_no_arrays_file(tmp_path: Path):
    section = Detector((Component(SectionScorer("fan/section_00", [0]), Standardiser(1, 2)),))
    save_calibration(calibration(detector=section), tmp_path / "c.yaml")
    assert not (tmp_path / "c.npz").exists()
    loaded = load_calibration(tmp_path / "c.yaml", model_info())
    assert loaded.scorer == "section" and "arrays_file" not in (tmp_path / "c.yaml").read_text()


def test_files_are_readable_by_their_owner_only(tmp_path: Path):
    save_calibration(calibration(), tmp_path / "c.yaml")
    for path in (tmp_path / "c.yaml", tmp_path / "c.npz"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_calibration_for_another_model_is_refused_naming_both_files(tmp_path: Path):
    save_calibration(calibration(), tmp_path / "c.yaml")
    other = model_info(sha="b" * 64, onnx_path="/models/pump/model.onnx")
    with pytest.raises(ModelFileError) as caught:
        load_calibration(tmp_path / "c.yaml", other)
    message = str(caught.value)
    assert str(tmp_path / "c.yaml") in message
    assert "/models/pump/model.onnx" in message
    assert "aaaaaaaaaaaa" in message and "bbbbbbbbbbbb" in message


def test_a_bank_from_another_calibration_is_refused(tmp_path: Path):
    save_calibration(calibration(), tmp_path / "a.yaml")
    other = calibration(detector=knn_detector(np.ones((2, 4), np.float32)))
    save_calibration(other, tmp_path / "b.yaml")
    os.replace(tmp_path / "b.npz", tmp_path / "a.npz")
    with pytest.raises(ModelFileError, match="does not belong to"):
        load_calibration(tmp_path / "a.yaml", model_info())


def test_a_missing_bank_is_refused(tmp_path: Path):
    save_calibration(calibration(), tmp_path / "c.yaml")
    (tmp_path / "c.npz").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_calibration(tmp_path / "c.yaml", model_info())


def edit_detector(data: dict, **changes) -> dict:
    component = {**data["detector"]["components"][0], **changes}
    return {**data, "detector": {**data["detector"], "components": [component]}}


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (lambda d: {**d, "format_version": 99}, "format_version 99"),
        (lambda d: {**d, "threshold": "high"}, "threshold"),
        (lambda d: {**d, "k": 6}, r"k \(6\) cannot exceed n \(5\)"),
        (lambda d: {**d, "colour": "red"}, "colour"),
        (lambda d: edit_detector(d, kind="psychic"), r"unknown scorer 'psychic' \(known: knn"),
        (lambda d: edit_detector(d, standardiser={"mean": 0.0, "std": 0.0}), "std"),
        (lambda d: {**d, "detector": {"combiner": "median", **{
            k: v for k, v in d["detector"].items() if k != "combiner"}}}, "combiner"),
        (
            lambda d: {**d, "label": "fan", "detector": {"combiner": "mean", "components": [
                {"kind": "section", "params": {"label": "fan", "reduce": "max"},
                 "standardiser": {"mean": 0.0, "std": 1.0}}]}},
            "covers every label",
        ),
    ],
)  # fmt: skip
def test_an_inconsistent_file_names_itself_and_the_problem(tmp_path, edit, complaint):
    path = tmp_path / "c.yaml"
    save_calibration(calibration(), path)
    path.write_text(yaml.safe_dump(edit(yaml.safe_load(path.read_text()))))
    with pytest.raises(ModelFileError, match=complaint) as caught:
        load_calibration(path, model_info())
    assert str(path) in str(caught.value)


def test_a_file_missing_a_key_is_refused(tmp_path: Path):
    path = tmp_path / "c.yaml"
    save_calibration(calibration(), path)
    data = yaml.safe_load(path.read_text())
    del data["threshold"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelFileError, match="threshold"):
        load_calibration(path, model_info())


def test_a_bank_of_the_wrong_dimension_is_refused(tmp_path: Path):
    other = calibration(detector=knn_detector(np.ones((3, 7), np.float32)))
    save_calibration(other, tmp_path / "c.yaml")
    with pytest.raises(ModelFileError, match=r"bank has shape \(3, 7\)"):
        load_calibration(tmp_path / "c.yaml", model_info())


def test_garbage_and_missing_files_are_model_file_errors(tmp_path: Path):
    with pytest.raises(ModelFileError, match="no such calibration file"):
        load_calibration(tmp_path / "absent.yaml", model_info())
    (tmp_path / "bad.yaml").write_text("threshold: [unclosed\n")
    with pytest.raises(ModelFileError, match="not valid YAML"):
        load_calibration(tmp_path / "bad.yaml", model_info())
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ModelFileError, match=r"format_version|mapping"):
        load_calibration(tmp_path / "list.yaml", model_info())


def test_a_failed_write_leaves_the_old_files_and_no_temporary_ones(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    save_calibration(calibration(threshold=0.1), path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_calibration(calibration(threshold=0.9), path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert load_calibration(path, model_info()).threshold == 0.1


CRASH_BETWEEN_RENAMES = textwrap.dedent(
    """
    import os, pickle, sys
    from edge_asd.calibration.file import save_calibration

    calibration = pickle.loads(open(sys.argv[1], "rb").read())
    rename = os.replace

    def rename_then_die(src, dst):
        rename(src, dst)
        os._exit(9)  # the power goes out: the .npz is in place, the YAML not yet

    os.replace = rename_then_die
    save_calibration(calibration, sys.argv[2])
    """
)


def test_a_crash_between_the_two_renames_leaves_the_old_yaml_refusing_the_new_bank(
    tmp_path: Path,
):
    path = tmp_path / "c.yaml"
    save_calibration(calibration(threshold=0.1), path)
    old_yaml = path.read_bytes()
    new = calibration(threshold=0.9, detector=knn_detector(np.ones((6, 4), np.float32)))
    (tmp_path / "new.pickle").write_bytes(pickle.dumps(new))
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_BETWEEN_RENAMES, str(tmp_path / "new.pickle"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == 9, crashed.stderr
    assert path.read_bytes() == old_yaml  # the YAML was never replaced
    with pytest.raises(ModelFileError, match="does not belong to") as caught:
        load_calibration(path, model_info())
    assert str(tmp_path / "c.npz") in str(caught.value) and "calibrate again" in str(caught.value)
    save_calibration(new, path)  # calibrating again mends it
    assert_same(load_calibration(path, model_info()), new)


def test_the_arrays_lie_beside_the_yaml():
    assert arrays_path("/etc/edge-asd/fan1.yaml") == Path("/etc/edge-asd/fan1.npz")


def test_a_section_label_the_model_lacks_is_refused_naming_the_file(tmp_path: Path):
    section = Detector((Component(SectionScorer("fan/section_00", [0]), Standardiser(1, 2)),))
    path = tmp_path / "c.yaml"
    save_calibration(calibration(detector=section), path)
    data = yaml.safe_load(path.read_text())
    data["label"] = "pump/section_00"
    data["detector"]["components"][0]["params"]["label"] = "pump/section_00"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelFileError, match="matches none") as caught:
        load_calibration(path, model_info())
    assert str(path) in str(caught.value)
