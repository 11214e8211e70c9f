"""`edge-asd calibrate --scorer knn+twfr` (asked kinds, fused) end to end: a real model
through onnxruntime, generated machine sound, and `edge-asd score` deciding with what it
wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edge_asd.calibration.file import load_calibration
from edge_asd.cli import main
from edge_asd.model_file import load_model_info
from edge_asd.synth import Fault, MachineSynth, section_profile, write_wav

pytestmark = [pytest.mark.system, pytest.mark.slow]


def stream(path: Path, seconds: float, seed: int, faults=()) -> Path:
    synth = MachineSynth(section_profile("fan", 0), seed=seed, faults=tuple(faults))
    write_wav(path, synth.render(round(seconds * 16000)))
    return path


def calibrate(model: Path, out: Path, *extra: str) -> int:
    argv = ["calibrate", "--model", str(model), "--machine", "fan1", "--threads", "1"]
    return main([*argv, "--probes", "8", "--out", str(out), *extra])


def score_json(model: Path, calibration: Path, files: list[Path], capsys) -> dict[str, dict]:
    capsys.readouterr()
    argv = ["score", "--model", str(model), "--calibration", str(calibration), "--json"]
    assert main([*argv, "--threads", "1", *map(str, files)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return {Path(r["file"]).name: r for r in map(json.loads, lines)}


def test_a_knn_twfr_calibration_flags_a_fault_and_not_normal_sound(tiny_model, tmp_path, capsys):
    folder = tmp_path / "normal"
    folder.mkdir()
    for i in range(4):
        stream(folder / f"run_{i}.wav", 30.0, seed=10 + i)
    out = tmp_path / "cal" / "fan1.yaml"
    scorer = ("--scorer", "knn+twfr", "--fusion", "max", "--quantile", "0.99")
    assert calibrate(tiny_model, out, "--input", str(folder), *scorer) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("detector: knn(") and " max twfr(" in printed.splitlines()[0]
    assert "as asked (knn+twfr), options by faults" in printed
    for suffix in (".yaml", ".npz", ".png"):
        assert out.with_suffix(suffix).is_file()
    written = yaml.safe_load(out.read_text())
    assert [c["kind"] for c in written["detector"]["components"]] == ["knn", "twfr"]
    assert written["detector"]["combiner"] == "max" and written["selection"]["asked"] == "knn+twfr"
    calibration = load_calibration(out, load_model_info(tiny_model))
    assert calibration.scorer == "knn+twfr"
    assert {"c0_bank", "c1_precision_chols"} <= set(calibration.detector.to_state()[1])

    quiet = stream(tmp_path / "quiet.wav", 30.0, seed=50)
    faulty = stream(tmp_path / "faulty.wav", 30.0, seed=51, faults=[Fault("tone", 0.0, 31.0)])
    results = score_json(tiny_model, out, [quiet, faulty], capsys)
    assert results["faulty.wav"]["anomalous"] is True
    assert results["quiet.wav"]["anomalous"] is False
    assert results["faulty.wav"]["threshold"] == pytest.approx(calibration.threshold)
    assert results["faulty.wav"]["windows_above"] == results["faulty.wav"]["windows"]


def test_a_twfr_calibration_is_scored_by_edge_asd_score(tiny_model, tmp_path, capsys):
    folder = tmp_path / "normal"
    folder.mkdir()
    for i in range(3):
        stream(folder / f"run_{i}.wav", 25.0, seed=20 + i)
    out = tmp_path / "twfr.yaml"
    scorer = ("--scorer", "twfr", "--quantile", "0.99")
    assert calibrate(tiny_model, out, "--input", str(folder), *scorer) == 0
    faulty = stream(tmp_path / "faulty.wav", 20.0, seed=61, faults=[Fault("impacts", 0.0, 21.0)])
    quiet = stream(tmp_path / "quiet.wav", 20.0, seed=60)
    results = score_json(tiny_model, out, [quiet, faulty], capsys)
    assert results["faulty.wav"]["max_score"] > results["quiet.wav"]["max_score"]
    assert results["faulty.wav"]["anomalous"] is True
    assert results["quiet.wav"]["anomalous"] is False


def test_an_unknown_scorer_or_fusion_is_a_usage_error(tiny_model, tmp_path, capsys):
    code = calibrate(
        tiny_model, tmp_path / "c.yaml", "--input", str(tmp_path), "--scorer", "knn+magic"
    )
    err = capsys.readouterr().err
    assert code == 2 and "unknown scorer 'magic' (known: knn, section, twfr)" in err
    with pytest.raises(SystemExit) as caught:  # argparse: --fusion is mean or max
        calibrate(tiny_model, tmp_path / "c.yaml", "--input", str(tmp_path), "--fusion", "median")
    assert caught.value.code == 2 and "median" in capsys.readouterr().err
