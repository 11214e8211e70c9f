"""Recordings shorter than the confirmation span or than a window: one rule everywhere.

Issue 16, item 2: a 10 s clip whose only window scored 5x the threshold was `normal`
(3 of 5 can never hold in one window) while the same sound as a 14 s clip was ANOMALY.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_asd.cli import main
from edge_asd.recording import short_recording
from edge_asd.scoring.offline import WindowScores, verdict
from edge_asd.synth import render_clip, write_wav
from tests.unit.edge_asd.test_score_cli import section_scores_of, write_calibration


def scores_of(values) -> WindowScores:
    values = np.asarray(values, dtype=float)
    ends = 10.0 + np.arange(len(values))
    return WindowScores(values, ends, np.zeros(len(values)))


@pytest.mark.parametrize(
    ("above", "windows", "anomalous", "needed"),
    [
        (1, 1, True, 1),  # a 10 s clip: 1 of 1
        (0, 1, False, 1),
        (1, 2, False, 2),  # 11 s: ceil(3 * 2 / 5) = 2 of 2
        (2, 2, True, 2),
        (2, 3, True, 2),  # 12 s: 2 of 3, the share the daemon's 3 of 5 asks
        (2, 4, False, 3),  # 13 s: 3 of 4
        (3, 4, True, 3),
    ],
)
def test_a_recording_shorter_than_the_span_is_judged_by_the_same_share(
    above, windows, anomalous, needed
):
    values = [2.0] * above + [0.0] * (windows - above)
    seconds = 9.0 + windows
    judged = verdict(scores_of(values), 1.0, 3, 5, 5, span_seconds=14.0, seconds=seconds)
    assert judged.anomalous is anomalous
    assert judged.rule == (
        f"{needed} of {windows} windows: {seconds:.1f} s is shorter than the 14 s that 3 of 5 needs"
    )


def test_a_recording_as_long_as_the_span_is_judged_by_the_decider():
    # 3 above within 5 windows: the decider opens
    assert verdict(scores_of([2, 0, 2, 0, 2]), 1.0, 3, 5, 5, 14.0, 14.0).anomalous
    # 2 above in every run of 5: the decider never opens
    judged = verdict(scores_of([2, 0, 0, 2, 0, 0, 0, 2]), 1.0, 3, 5, 5, 14.0, 17.0)
    assert (judged.anomalous, judged.rule) == (False, "3 of 5 windows")


def test_a_recording_without_a_window_has_no_verdict():
    with pytest.raises(ValueError, match="no window"):
        verdict(scores_of([]), 1.0, 3, 5, 5, 14.0, 0.0)


@pytest.fixture(scope="module")
def fan(tmp_path_factory) -> dict[str, Path]:
    """The same fan as a 10 s clip and a 14 s clip, and as 6 s and 4 s clips."""
    folder = tmp_path_factory.mktemp("fan")
    sound = render_clip("fan", 1, "source", 14.0, seed=11)
    paths = {}
    for name, seconds in (("ten", 10.0), ("fourteen", 14.0), ("six", 6.0), ("four", 4.0)):
        paths[name] = folder / f"{name}.wav"
        write_wav(paths[name], sound[: round(seconds * 16000)])
    return paths


def score_json(capsys, model: Path, calibration: Path, *files: Path) -> tuple[int, list, str]:
    argv = ["score", "--json", "--threads", "1", "--model", str(model)]
    code = main([*argv, "--calibration", str(calibration), *map(str, files)])
    captured = capsys.readouterr()
    return code, [json.loads(x) for x in captured.out.splitlines() if x.strip()], captured.err


def test_a_ten_second_clip_five_times_the_threshold_is_an_anomaly(
    tiny_model, fan, tmp_path, capsys
):
    (score,) = section_scores_of(tiny_model, fan["ten"], 16000)
    calibration = write_calibration(
        tmp_path / "c.yaml", tiny_model, threshold=float(score) / 5, k=3, n=5, m_close=5
    )
    code, (ten, fourteen), _ = score_json(
        capsys, tiny_model, calibration, fan["ten"], fan["fourteen"]
    )
    assert code == 0
    assert ten["max_score"] == pytest.approx(5 * ten["threshold"], rel=1e-4)
    assert (ten["windows"], ten["windows_above"], ten["anomalous"]) == (1, 1, True)
    assert ten["rule"] == "1 of 1 windows: 10.0 s is shorter than the 14 s that 3 of 5 needs"
    assert (fourteen["windows"], fourteen["anomalous"], fourteen["rule"]) == (
        5,
        True,
        "3 of 5 windows",
    )


def test_a_ten_second_clip_below_the_threshold_is_normal_saying_by_which_rule(
    tiny_model, fan, tmp_path, capsys
):
    (score,) = section_scores_of(tiny_model, fan["ten"], 16000)
    calibration = write_calibration(tmp_path / "c.yaml", tiny_model, threshold=2 * float(score))
    argv = ["score", "--model", str(tiny_model), "--calibration", str(calibration)]
    code = main([*argv, str(fan["ten"])])
    out = capsys.readouterr().out
    assert code == 0
    assert out.strip().endswith(
        ": normal (1 of 1 windows: 10.0 s is shorter than the 12 s that 2 of 3 needs)"
    )


def test_score_and_calibrate_tile_and_refuse_the_same_short_recordings(
    tiny_model, fan, tmp_path, capsys, caplog
):
    from edge_asd.calibration.inputs import plan_recordings
    from edge_asd.errors import AudioFileError

    (score,) = section_scores_of(tiny_model, fan["ten"], 16000)
    calibration = write_calibration(tmp_path / "c.yaml", tiny_model, threshold=float(score))
    code, lines, err = score_json(capsys, tiny_model, calibration, fan["six"], fan["four"])
    assert code != 0
    assert [(r["file"], r["windows"]) for r in lines] == [(str(fan["six"]), 1)]
    refused = short_recording(str(fan["four"]), 4.0, 10.0).problem
    assert refused and refused in err
    assert short_recording(str(fan["six"]), 6.0, 10.0).warning in caplog.text

    (tiled,) = plan_recordings([fan["six"]], window_samples=160000)
    assert tiled.tiled
    with pytest.raises(AudioFileError) as refusal:
        plan_recordings([fan["four"]], window_samples=160000)
    assert refused in str(refusal.value)


def test_evaluate_tiles_and_skips_the_same_short_test_clips(fan):
    pytest.importorskip("torch", reason="edge-asd-train evaluate needs the train extra (torch)")
    from edge_asd.errors import AudioFileError
    from train.evaluate import clip_batches

    (batch,) = clip_batches(fan["six"], 160000, 16000)
    assert batch.waveforms.shape == (1, 160000)
    with pytest.raises(AudioFileError) as refusal:
        clip_batches(fan["four"], 160000, 16000)
    assert str(refusal.value) == short_recording(str(fan["four"]), 4.0, 10.0).problem


def test_score_ends_with_the_totals_a_user_would_count(tiny_model, fan, tmp_path, capsys):
    (score,) = section_scores_of(tiny_model, fan["ten"], 16000)
    calibration = write_calibration(tmp_path / "c.yaml", tiny_model, threshold=float(score) / 5)
    argv = ["score", "--threads", "1", "--model", str(tiny_model)]
    files = [str(fan[name]) for name in ("ten", "fourteen", "four")]
    assert main([*argv, "--calibration", str(calibration), *files]) != 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "3 files: 2 ANOMALY, 0 normal, 1 not scored (see the errors)"
