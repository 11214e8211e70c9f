"""Calibrating twfr and fused scorers: hand-written score sets, the threshold on the fused
honest scores, the file round trip and the scorer the daemon builds from it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge_asd.calibration.build import Embedded, Settings, calibrate, fuse_fitted
from edge_asd.calibration.file import load_calibration, save_calibration
from edge_asd.calibration.report import render_report_png, summary_lines
from edge_asd.calibration.scorers import Fitted
from edge_asd.calibration.threshold import choose_threshold
from edge_asd.engines.base import EngineOutput
from edge_asd.errors import ModelFileError, UserError
from edge_asd.scoring.knn import knn_scores
from edge_asd.scoring.scorer import FusedScorer, scorer_from_calibration
from edge_asd.scoring.twfr import R_CANDIDATES, TwfrModel, pool_candidates
from tests.unit.edge_asd.calibration.test_file import model_info

N_MELS, FRAMES = 128, 12


def fitted(name: str, runs: list[list[float]]) -> Fitted:
    return Fitted(name, [np.asarray(r, dtype=np.float64) for r in runs], {"by": name})


def test_fused_honest_scores_are_the_mean_of_hand_computed_z_scores():
    # two recordings each; knn: mean 0.2, twfr: mean 50
    knn = fitted("knn", [[0.1, 0.3], [0.1, 0.3, 0.2]])
    twfr = fitted("twfr", [[40.0, 60.0], [50.0, 30.0, 70.0]])
    runs, params, standardisers = fuse_fitted({"knn": knn, "twfr": twfr}, "mean")
    assert standardisers["knn"].mean == pytest.approx(0.2)
    assert standardisers["twfr"].mean == pytest.approx(50.0)
    knn_std, twfr_std = np.std([0.1, 0.3, 0.1, 0.3, 0.2]), np.std([40, 60, 50, 30, 70])
    assert standardisers["knn"].std == pytest.approx(knn_std)
    expected_first = [(-0.1 / knn_std + -10 / twfr_std) / 2, (0.1 / knn_std + 10 / twfr_std) / 2]
    np.testing.assert_allclose(runs[0], expected_first)
    expected_second = [-0.1 / knn_std / 2, (0.1 / knn_std - 20 / twfr_std) / 2, 10 / twfr_std]
    np.testing.assert_allclose(runs[1], expected_second, atol=1e-12)
    assert params["combiner"] == "mean"
    assert params["knn"]["by"] == "knn" and params["twfr"]["by"] == "twfr"
    assert params["twfr"]["standardiser"] == {"mean": pytest.approx(50.0), "std": twfr_std}
    assert params["knn"]["score_stats"]["max"] == pytest.approx(0.3)


def test_max_fusion_takes_the_larger_z_score_and_one_scorer_is_left_as_it_is():
    a = fitted("a", [[0.0, 2.0, 1.0]])  # mean 1, std sqrt(2/3)
    b = fitted("b", [[10.0, 10.0, 40.0]])  # mean 20, std sqrt(200)
    runs, params, _ = fuse_fitted({"a": a, "b": b}, "max")
    za = (np.array([0.0, 2.0, 1.0]) - 1) / np.sqrt(2 / 3)
    zb = (np.array([10.0, 10.0, 40.0]) - 20) / np.sqrt(200)
    np.testing.assert_allclose(runs[0], np.maximum(za, zb))
    assert params["combiner"] == "max"
    alone, alone_params, standardisers = fuse_fitted({"a": a}, "mean")
    assert alone is a.runs and alone_params == {"by": "a"} and standardisers == {}


def recordings(n: int, windows: int, seed: int = 0) -> list[Embedded]:
    """A machine's recordings: embeddings around one direction, log-mel of a steady hum."""
    rng = np.random.default_rng(seed)
    spectrum = np.linspace(2.0, -2.0, N_MELS)[:, None]
    out = []
    for i in range(n):
        embedding = np.array([1.0, 0.5, 0.0, 0.0]) + 0.2 * rng.normal(size=(windows, 4))
        logits = np.stack([8 + rng.normal(size=windows), rng.normal(size=windows)], axis=1)
        logmel = spectrum + 0.3 * rng.normal(size=(windows, N_MELS, FRAMES))
        out.append(
            Embedded(
                f"rec{i}",
                embedding.astype(np.float32),
                logits.astype(np.float32),
                windows + 9.0,
                pool_candidates(logmel),
            )
        )
    return out


@pytest.fixture(scope="module")
def knn_twfr():
    main = recordings(5, 24)
    settings = Settings(machine="fan1", scorer="knn+twfr", quantile=0.9)
    return main, calibrate(main, [], settings, model_info())


def test_a_knn_twfr_threshold_is_set_on_the_fused_honest_scores(knn_twfr):
    _, result = knn_twfr
    cal = result.calibration
    assert cal.scorer == "knn+twfr" and set(result.components) == {"knn", "twfr"}
    for name, runs in result.components.items():
        scores = np.concatenate(runs)
        assert cal.scorer_params[name]["standardiser"]["mean"] == pytest.approx(scores.mean())
        assert result.standardisers[name].std == pytest.approx(scores.std())
    z = [result.standardisers[n](np.concatenate(result.components[n])) for n in ("knn", "twfr")]
    np.testing.assert_allclose(np.concatenate(result.runs), (z[0] + z[1]) / 2)
    again = choose_threshold(
        result.runs, hop_seconds=1.0, window_seconds=10.0, k=3, n=5, quantile=0.9
    )
    assert cal.threshold == pytest.approx(again.threshold)
    assert cal.score_stats["mean"] == pytest.approx(0.0, abs=1e-9)  # a mean of z-scores
    twfr = cal.scorer_params["twfr"]
    assert twfr["r"] in R_CANDIDATES and 1 <= twfr["n_components"] <= 4
    assert len(twfr["held_out_log_likelihood"]) == 45
    assert twfr["honest_scores"] == "leave-one-recording-out"
    assert cal.bank.shape == (16, 4) and cal.arrays["twfr_means"].shape[1] == N_MELS


def test_honest_twfr_scores_are_higher_than_the_final_mixture_gives_its_own_windows(knn_twfr):
    main, result = knn_twfr
    model = TwfrModel.from_arrays(result.calibration.arrays)
    index = R_CANDIDATES.index(model.r)
    own = model.pooled_scores(np.concatenate([r.pooled[:, index] for r in main]))
    assert np.median(np.concatenate(result.components["twfr"])) > np.median(own)


def test_a_fused_calibration_round_trips_and_scores_as_it_was_made(knn_twfr, tmp_path):
    _, result = knn_twfr
    original = result.calibration
    save_calibration(original, tmp_path / "fan1.yaml")
    loaded = load_calibration(tmp_path / "fan1.yaml", model_info())
    assert loaded == original
    assert sorted(loaded.arrays) == sorted(original.arrays)
    for name, array in original.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[name], array)
    scorer = scorer_from_calibration(loaded, model_info().labels, "fan1.yaml")
    assert isinstance(scorer, FusedScorer) and scorer.kind == "knn+twfr"
    rng = np.random.default_rng(5)
    logmel = rng.normal(size=(3, N_MELS, FRAMES))
    embedding = rng.normal(size=(3, 4)).astype(np.float32)
    output = EngineOutput(embedding, np.zeros((3, 2), np.float32), logmel)
    model = TwfrModel.from_arrays(original.arrays)
    by_hand = (
        (knn_scores(embedding, original.bank) - result.standardisers["knn"].mean)
        / result.standardisers["knn"].std
        + (model.scores(logmel) - result.standardisers["twfr"].mean)
        / result.standardisers["twfr"].std
    ) / 2
    np.testing.assert_allclose(scorer(output), by_hand, rtol=1e-6)


def test_a_twfr_calibration_alone_round_trips_and_flags_a_louder_band(tmp_path):
    main = recordings(4, 20, seed=1)
    settings = Settings(machine="fan1", scorer="twfr", quantile=0.99)
    cal = calibrate(main, [], settings, model_info()).calibration
    assert cal.bank is None and cal.scorer_params["held_out_log_likelihood"]
    save_calibration(cal, tmp_path / "t.yaml")
    loaded = load_calibration(tmp_path / "t.yaml", model_info())
    scorer = scorer_from_calibration(loaded, model_info().labels)
    rng = np.random.default_rng(2)
    hum = np.linspace(2.0, -2.0, N_MELS)[:, None] + 0.3 * rng.normal(size=(6, N_MELS, FRAMES))
    faulty = hum.copy()
    faulty[:, 40:48] += 3.0  # a new tone in a few bands
    outputs = [EngineOutput(np.zeros((6, 4)), np.zeros((6, 2)), x) for x in (hum, faulty)]
    normal_scores, fault_scores = scorer(outputs[0]), scorer(outputs[1])
    assert (normal_scores < loaded.threshold).mean() >= 0.5
    assert (fault_scores > loaded.threshold).all()


def test_a_fusion_may_include_the_section_scorer():
    settings = Settings(machine="fan1", scorer="section+knn", label="fan/section_00", quantile=0.9)
    result = calibrate(recordings(3, 20), [], settings, model_info())
    assert result.calibration.scorer == "section+knn"
    assert result.calibration.scorer_params["section"]["label_indices"] == [0]


def test_unknown_scorers_and_fusions_are_refused_before_any_work():
    main = recordings(2, 10)
    with pytest.raises(UserError, match="bogus"):
        calibrate(main, [], Settings(machine="m", scorer="knn+bogus", quantile=0.9), model_info())
    with pytest.raises(UserError, match="median"):
        calibrate(
            main, [], Settings(machine="m", scorer="knn+twfr", combiner="median"), model_info()
        )


def test_a_fused_file_without_its_standardiser_or_mixture_is_refused(knn_twfr, tmp_path):
    cal = knn_twfr[1].calibration
    params = {**cal.scorer_params, "twfr": {"r": 1.0}}
    save_calibration(replace(cal, scorer_params=params), tmp_path / "a.yaml")
    with pytest.raises(ModelFileError, match=r"twfr\.standardiser"):
        load_calibration(tmp_path / "a.yaml", model_info())
    arrays = {k: v for k, v in cal.arrays.items() if k != "twfr_means"}
    save_calibration(replace(cal, arrays=arrays), tmp_path / "b.yaml")
    with pytest.raises(ModelFileError, match="twfr_means"):
        load_calibration(tmp_path / "b.yaml", model_info())


def test_the_report_shows_each_scorers_spread_beside_the_fused_one(knn_twfr):
    result = knn_twfr[1]
    scores = np.concatenate(result.runs)
    lines = summary_lines(
        result.choice, scores, "knn+twfr", 5, result.components, result.standardisers
    )
    spread = [line for line in lines if line.startswith("  ")]
    assert [line.split(":")[0].strip() for line in spread] == ["knn", "twfr", "fused (knn+twfr)"]
    assert f"std {np.std(scores):.3g}" in spread[-1]
    single = render_report_png(result.runs, result.choice, "fan1")
    fused = render_report_png(
        result.runs, result.choice, "fan1", result.components, result.standardisers
    )
    assert fused.startswith(b"\x89PNG") and len(fused) > len(single)
