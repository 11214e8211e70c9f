"""`edge-asd score`: per-file window scores and decisions, JSON lines, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_asd.audio import SAMPLE_RATE
from edge_asd.cli import main
from edge_asd.commands.score import JSON_KEYS
from edge_asd.engines import open_engine
from edge_asd.errors import EXIT_INPUT, EXIT_USAGE
from edge_asd.scoring.section import section_scores
from edge_asd.synth import render_clip, write_wav
from edge_asd.windows import sliding_windows

LABEL = "fan/section_01"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """WAV files: 12 s and 10 s of a fan, a 4 s one (too short to tile), a 6 s one (tiled),
    a stereo one, and a file that is not audio."""
    folder = tmp_path_factory.mktemp("clips")
    paths = {}
    for name, seconds, seed in (
        ("twelve", 12.0, 1),
        ("ten", 10.0, 2),
        ("short", 4.0, 3),
        ("six", 6.0, 5),
    ):
        paths[name] = folder / f"{name}.wav"
        write_wav(paths[name], render_clip("fan", 1, "source", seconds, seed=seed))
    left = render_clip("fan", 1, "source", 11.0, seed=4)
    paths["stereo"] = folder / "stereo.wav"
    write_wav(paths["stereo"], np.stack([left, 0.2 * left[::-1]], axis=1))
    paths["text"] = folder / "notes.wav"
    paths["text"].write_text("not audio")
    return paths


def score(capsys, *argv: str) -> tuple[int, list[dict], str]:
    """Run `edge-asd score --json ...`; (exit code, JSON objects, stderr)."""
    code = main(["score", "--json", "--threads", "1", *argv])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return code, lines, captured.err


def test_json_line_per_file_with_the_stable_keys(tiny_model, clips, capsys):
    code, lines, _ = score(
        capsys, "--model", str(tiny_model), "--label", LABEL, str(clips["twelve"])
    )
    assert code == 0
    (result,) = lines
    assert tuple(result) == JSON_KEYS
    assert result["file"] == str(clips["twelve"])
    assert result["windows"] == 3  # windows ending at 10, 11 and 12 s
    assert result["max_score"] >= result["mean_score"] > 0
    # without a calibration there is no threshold and no decision
    assert result["threshold"] is None
    assert result["windows_above"] is None
    assert result["anomalous"] is None


def test_scores_are_the_section_scores_of_each_window(tiny_model, clips, capsys):
    from edge_asd.audio import read_audio
    from edge_asd.labels import matching_indices

    engine = open_engine(tiny_model, threads=1)
    samples = read_audio(clips["twelve"]).mono()
    windows = np.ascontiguousarray(sliding_windows(samples, engine.info.window_samples, 8000))
    expected = section_scores(
        engine.infer(windows).logits, matching_indices(engine.info.labels, LABEL)
    )
    _, (result,), _ = score(
        capsys,
        *("--model", str(tiny_model), "--label", LABEL, "--hop-seconds", "0.5"),
        str(clips["twelve"]),
    )
    assert result["windows"] == len(expected) == 5
    assert result["max_score"] == pytest.approx(expected.max(), rel=1e-5)
    assert result["mean_score"] == pytest.approx(expected.mean(), rel=1e-5)


def test_a_label_covering_every_label_is_refused_saying_why(tiny_model, clips, capsys):
    # a binding that covers every label says only how sure the classifier is of any label
    argv = ("--model", str(tiny_model), "--label", "fan", str(clips["ten"]))
    code, lines, err = score(capsys, *argv)
    assert code == EXIT_USAGE and lines == []
    assert "covers every label" in err and "not of this machine's" in err


def test_a_channel_can_be_chosen_and_defaults_to_the_mean(tiny_model, clips, capsys):
    common = ("--model", str(tiny_model), "--label", LABEL, str(clips["stereo"]))
    _, (mean,), _ = score(capsys, *common)
    _, (left,), _ = score(capsys, *common, "--channel", "0")
    _, (right,), _ = score(capsys, *common, "--channel", "1")
    assert mean["windows"] == left["windows"] == right["windows"] == 2
    assert len({mean["max_score"], left["max_score"], right["max_score"]}) == 3
    code, lines, err = score(capsys, *common, "--channel", "2")
    assert code == EXIT_INPUT and lines == []
    assert "stereo.wav" in err and "no channel 2" in err


def test_bad_files_are_named_and_the_others_still_scored(tiny_model, clips, capsys):
    missing = clips["ten"].parent / "missing.wav"
    code, lines, err = score(
        capsys,
        *("--model", str(tiny_model), "--label", LABEL),
        *(str(clips["short"]), str(clips["ten"]), str(clips["text"]), str(missing)),
    )
    assert code == EXIT_INPUT
    assert [line["file"] for line in lines] == [str(clips["ten"])]
    assert lines[0]["windows"] == 1
    # a path that is not there is found while the inputs are walked, before any scoring
    missing_line, short_line, notes_line = err.strip().splitlines()
    assert "missing.wav" in missing_line and "no such file" in missing_line
    assert "short.wav" in short_line and "4.0 s is too short" in short_line
    assert "notes.wav" in notes_line


def test_a_folder_is_walked_as_calibrate_walks_its_inputs(tiny_model, clips, tmp_path, capsys):
    folder = tmp_path / "recordings"
    (folder / "day1").mkdir(parents=True)
    elsewhere = tmp_path / "other_disk"
    elsewhere.mkdir()
    (folder / "day1" / "ten.wav").write_bytes(clips["ten"].read_bytes())
    (elsewhere / "twelve.wav").write_bytes(clips["twelve"].read_bytes())
    (folder / "day2").symlink_to(elsewhere)
    (folder / ".DS_Store").write_bytes(b"\0")
    code, lines, err = score(capsys, "--model", str(tiny_model), "--label", LABEL, str(folder))
    assert code == 0, err
    assert [Path(line["file"]).name for line in lines] == ["ten.wav", "twelve.wav"]


def test_human_readable_output_without_json(tiny_model, clips, capsys):
    code = main(["score", "--model", str(tiny_model), "--label", LABEL, str(clips["ten"])])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"{clips['ten']}: 1 windows, max ")


def test_an_unknown_label_is_an_error_naming_the_labels(tiny_model, clips, capsys):
    code, _, err = score(
        capsys, "--model", str(tiny_model), "--label", "pump/section_00", str(clips["ten"])
    )
    assert code == EXIT_INPUT
    assert "pump/section_00" in err and "fan/section_00" in err


def test_a_hop_that_is_not_whole_samples_is_a_usage_error(tiny_model, clips, capsys):
    code, _, err = score(
        capsys,
        *("--model", str(tiny_model), "--label", LABEL, "--hop-seconds", "0.00001"),
        str(clips["ten"]),
    )
    assert code == EXIT_USAGE
    assert "--hop-seconds" in err


def test_a_missing_model_is_an_error_naming_it(tmp_path, clips, capsys):
    code, _, err = score(capsys, "--model", str(tmp_path), "--label", LABEL, str(clips["ten"]))
    assert code == EXIT_INPUT
    assert "model.onnx" in err


def test_label_or_calibration_is_required(tiny_model, clips):
    result = subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", "score", "--model", str(tiny_model), "x.wav"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == EXIT_USAGE
    assert "--calibration" in result.stderr and "--label" in result.stderr


def test_the_installed_command_scores_a_file(tiny_model, clips):
    command = Path(sys.executable).parent / "edge-asd"
    if not command.exists():
        pytest.skip("edge-asd is not installed in this environment")
    argv = ["score", "--json", "--model", str(tiny_model), "--label", LABEL]
    result = subprocess.run(
        [str(command), *argv, str(clips["twelve"])],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["windows"] == 3


def write_calibration(path: Path, model_dir: Path, scorer=None, **fields) -> Path:
    """A calibration.yaml (+ .npz) for `model_dir` whose detector is `scorer` with its raw
    scores as z-scores (standardiser mean 0, std 1), written by the calibration module."""
    from edge_asd.calibration.file import Calibration, save_calibration
    from edge_asd.model_file import load_model_info
    from edge_asd.scoring.detector import Component, Detector, Standardiser
    from edge_asd.scoring.section import SectionScorer

    info = load_model_info(model_dir)
    if scorer is None:
        scorer = SectionScorer(LABEL, [info.labels.index(LABEL)])
    values = {
        "machine": "fan-1",
        "label": LABEL,
        "detector": Detector((Component(scorer, Standardiser(0.0, 1.0)),)),
        "k": 2,
        "n": 3,
        "m_close": 2,
        "hop_seconds": 1.0,
        "model_sha256": info.onnx_sha256,
        "method": "quantile",
        "method_params": {},
        "n_windows": 10,
        "n_recordings": 1,
        "audio_seconds": 12.0,
        "expected_false_alarms_per_day": 1.0,
    }
    values.update(fields)
    save_calibration(Calibration(**values), path)
    return path


@pytest.fixture(scope="module")
def knn_calibration(tiny_model, clips, tmp_path_factory) -> Path:
    """A knn calibration whose bank holds every window of `twelve`, its threshold halfway
    between those windows' scores (zero) and the lowest score of the other fan's `ten`."""
    from edge_asd.audio import read_audio
    from edge_asd.scoring.knn import KnnScorer, build_bank, knn_scores

    engine = open_engine(tiny_model, threads=1)

    def embeddings(path: Path) -> np.ndarray:
        samples = read_audio(path).mono()
        windows = sliding_windows(samples, engine.info.window_samples, SAMPLE_RATE)
        return engine.infer(np.ascontiguousarray(windows)).embedding

    bank = build_bank(embeddings(clips["twelve"]), n_centres=64)
    other = render_clip("fan", 0, "source", 11.0, seed=9)
    write_wav(clips["twelve"].parent / "other_fan.wav", other)
    lowest_other = knn_scores(embeddings(clips["twelve"].parent / "other_fan.wav"), bank).min()
    assert lowest_other > 1e-4, "the random model should tell two fans apart"
    path = tmp_path_factory.mktemp("calibration") / "calibration.yaml"
    knn = KnnScorer(bank, n_centres=64)
    return write_calibration(path, tiny_model, knn, label=None, threshold=lowest_other / 2)


def test_calibration_gives_threshold_count_above_and_decision(
    tiny_model, clips, knn_calibration, capsys
):
    other = clips["twelve"].parent / "other_fan.wav"
    code, lines, err = score(
        capsys,
        *("--model", str(tiny_model), "--calibration", str(knn_calibration)),
        *(str(clips["twelve"]), str(other)),
    )
    assert code == 0, err
    normal, anomalous = lines
    assert tuple(normal) == JSON_KEYS
    assert normal["threshold"] == anomalous["threshold"] > 0
    assert normal["max_score"] < normal["threshold"]
    assert (normal["windows_above"], normal["anomalous"]) == (0, False)
    assert (anomalous["windows"], anomalous["windows_above"], anomalous["anomalous"]) == (
        2,
        2,
        True,
    )


def section_scores_of(model_dir: Path, path: Path, hop_samples: int) -> np.ndarray:
    """The section scores at LABEL of every window of a file, computed directly."""
    from edge_asd.audio import read_audio
    from edge_asd.labels import matching_indices

    engine = open_engine(model_dir, threads=1)
    windows = sliding_windows(read_audio(path).mono(), engine.info.window_samples, hop_samples)
    logits = engine.infer(np.ascontiguousarray(windows)).logits
    return section_scores(logits, matching_indices(engine.info.labels, LABEL))


def test_windows_above_without_k_of_n_are_not_an_anomaly(tiny_model, clips, tmp_path, capsys):
    # 12 s at a hop of 0.5 s: 5 windows, enough for the daemon's 3-of-3 rule as it is;
    # a threshold with only the two highest windows above it cannot meet it
    scores = np.sort(section_scores_of(tiny_model, clips["twelve"], 8000))
    threshold = float((scores[-3] + scores[-2]) / 2)
    calibration = write_calibration(
        tmp_path / "strict.yaml", tiny_model, threshold=threshold, k=3, n=3, hop_seconds=0.5
    )
    common = ("--model", str(tiny_model), "--calibration", str(calibration))
    code, (result,), _ = score(capsys, *common, str(clips["twelve"]))
    assert code == 0
    assert (result["windows"], result["windows_above"], result["anomalous"]) == (5, 2, False)
    assert result["rule"] == "3 of 3 windows"


def test_the_hop_defaults_to_the_calibrations(tiny_model, clips, tmp_path, capsys):
    calibration = write_calibration(
        tmp_path / "half.yaml",
        tiny_model,
        threshold=1.0,
        hop_seconds=0.5,
    )
    common = ("--model", str(tiny_model), "--calibration", str(calibration))
    _, (result,), _ = score(capsys, *common, str(clips["twelve"]))
    assert result["windows"] == 5
    _, (result,), _ = score(capsys, *common, "--hop-seconds", "2", str(clips["twelve"]))
    assert result["windows"] == 2


def test_a_calibration_of_another_model_is_refused(tiny_model, clips, tmp_path, capsys):
    calibration = write_calibration(
        tmp_path / "other.yaml",
        tiny_model,
        threshold=1.0,
        model_sha256="0" * 64,
    )
    code, lines, err = score(
        capsys,
        "--model",
        str(tiny_model),
        "--calibration",
        str(calibration),
        str(clips["ten"]),
    )
    assert code == EXIT_INPUT and lines == []
    assert "other.yaml" in err and "model.onnx" in err


def test_a_calibration_edited_in_latin1_names_its_line_and_column(
    tiny_model, clips, knn_calibration, tmp_path, capsys
):
    # The shared reader of user YAML (edge_asd.config.yaml_file), as for the daemon config.
    path = tmp_path / "calibration.yaml"
    text = knn_calibration.read_text().replace("threshold:", "# Lüfter 2\nthreshold:", 1)
    path.write_bytes(text.encode("latin-1"))
    line = text.splitlines().index("# Lüfter 2") + 1
    code, lines, err = score(
        capsys, "--model", str(tiny_model), "--calibration", str(path), str(clips["ten"])
    )
    assert code == EXIT_INPUT and lines == []
    assert err == (
        f"edge-asd score: error: {path}:{line}:4: cannot read the calibration: byte 0xfc is "
        f'not UTF-8 (line {line}: "# L\\xfcfter 2"); it looks like Windows-1252 or Latin-1, '
        f"where 0xfc is 'ü': save the file as UTF-8 (in most editors: Save as, Encoding: UTF-8)\n"
    )
