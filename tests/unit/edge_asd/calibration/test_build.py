"""From per-recording engine outputs to a calibration, and its report."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.calibration.build import Embedded, Settings, calibrate
from edge_asd.calibration.report import render_report_png, summary_lines
from edge_asd.errors import UserError
from edge_asd.scoring.knn import knn_scores
from tests.unit.edge_asd.calibration.test_file import model_info


def recordings(n: int, windows: int, seed: int = 0) -> list[Embedded]:
    """Recordings of a machine: embeddings scattered around one direction, logits favouring
    label 0."""
    rng = np.random.default_rng(seed)
    centre = np.array([1.0, 0.5, 0.0, 0.0])
    out = []
    for i in range(n):
        embedding = centre + 0.2 * rng.normal(size=(windows, 4))
        logits = np.stack([8 + rng.normal(size=windows), rng.normal(size=windows)], axis=1)
        out.append(Embedded(f"rec{i}", embedding.astype(np.float32), logits, windows + 9.0))
    return out


def test_knn_calibration_has_a_bank_and_a_threshold_from_honest_scores():
    main = recordings(6, 40)
    result = calibrate(main, [], Settings(machine="fan1", quantile=0.9), model_info())
    cal = result.calibration
    assert cal.scorer == "knn" and cal.bank.shape == (16, 4)
    assert (cal.n_windows, cal.n_recordings) == (240, 6)
    assert cal.model_sha256 == model_info().onnx_sha256
    assert cal.audio_seconds == pytest.approx(6 * 49.0)
    assert cal.scorer_params["honest_scores"] == "leave-one-recording-out"
    # the final bank scores its own members lower than the leave-out banks did
    own = knn_scores(np.concatenate([r.embedding for r in main]), cal.bank)
    assert np.median(own) < np.median(np.concatenate(result.runs))
    assert cal.threshold > np.quantile(own, 0.9)


def test_new_condition_windows_are_kept_raw_in_the_bank():
    main, new = recordings(4, 30), recordings(2, 5, seed=9)
    result = calibrate(main, new, Settings(machine="fan1", quantile=0.9), model_info())
    cal = result.calibration
    assert cal.bank.shape == (16 + 10, 4)
    np.testing.assert_allclose(cal.bank[16:], np.concatenate([r.embedding for r in new]))
    assert cal.n_windows == 130 and cal.scorer_params["new_condition_windows"] == 10


def test_section_calibration_scores_the_label_and_needs_one():
    main = recordings(3, 30)
    settings = Settings(machine="fan1", scorer="section", label="fan/section_00", quantile=0.9)
    result = calibrate(main, [], settings, model_info())
    assert result.calibration.bank is None
    assert result.calibration.scorer_params["label_indices"] == [0]
    for recording, scores in zip(main, result.runs, strict=True):
        logits = recording.logits  # -log softmax at label 0 of two labels, by hand:
        np.testing.assert_allclose(scores, np.log1p(np.exp(logits[:, 1] - logits[:, 0])))
    with pytest.raises(UserError, match="needs --label"):
        calibrate(main, [], Settings(machine="fan1", scorer="section"), model_info())


def test_a_label_the_model_lacks_is_refused():
    with pytest.raises(UserError, match="matches none"):
        calibrate(recordings(2, 20), [], Settings(machine="m", label="pump"), model_info())


def test_the_report_draws_a_png_and_says_the_expected_alarm_rate():
    result = calibrate(recordings(6, 40), [], Settings(machine="fan1", quantile=0.9), model_info())
    png = render_report_png(result.runs, result.choice, "fan1")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    lines = summary_lines(result.choice, np.concatenate(result.runs), "knn", 6)
    assert any(f"threshold {result.calibration.threshold:.6g}" in line for line in lines)
    assert any("false alarms" in line and "a day" in line for line in lines)
