"""From a machine's collected windows to a calibration: the detector chosen by synthetic
faults (or as asked), the threshold on its honest scores, the detectability table, the
input level, the refusals, and the report. On the tiny model's real outputs for
generated fan sound (tests/harness/calibration.py collects them as `calibrate` does)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_asd.calibration.build import Settings, calibrate
from edge_asd.calibration.collect import CalibrationData, probe_cases
from edge_asd.calibration.report import render_report_png, summary_lines
from edge_asd.calibration.select import GAIN_KIND, TIE, fuse, judge
from edge_asd.calibration.threshold import choose_threshold
from edge_asd.engines import open_engine
from edge_asd.errors import UserError
from edge_asd.faults import FAULT_KINDS
from edge_asd.scoring.detector import Standardiser, combine
from edge_asd.scoring.knn import knn_scores
from edge_asd.scoring.section import section_scores
from edge_asd.synth import render_clip, write_wav
from tests.harness.calibration import collect_files
from tests.harness.scorer_kinds import ConstantScorer, RandomScorer, registered

MAIN_SECONDS = (20.0, 20.0, 20.0)  # 11 windows each at a 1 s hop
NEW_SECONDS = 14.0  # 5 windows of the other operating point


@pytest.fixture(scope="module")
def collected(tiny_model: Path, tmp_path_factory) -> tuple[CalibrationData, object]:
    """(the collected windows and probes, the model's info): three recordings of a fan
    and one of it at its other operating point as the new condition."""
    folder = tmp_path_factory.mktemp("normal")
    main = []
    for i, seconds in enumerate(MAIN_SECONDS):
        main.append(folder / f"run_{i}.wav")
        write_wav(main[-1], render_clip("fan", 0, "source", seconds, seed=10 + i))
    write_wav(folder / "fast.wav", render_clip("fan", 0, "target", NEW_SECONDS, seed=20))
    engine = open_engine(tiny_model, threads=1)
    try:
        return collect_files(engine, main, [folder / "fast.wav"], n_probes=8), engine.info
    finally:
        engine.close()


def run(collected, **settings) -> object:
    data, info = collected
    return calibrate(data, Settings(**{"machine": "fan1", "quantile": 0.9, **settings}), info)


def test_collection_keeps_every_windows_features_and_faults_of_a_few(collected):
    data, info = collected
    assert data.counts == (11, 11, 11, 5) and data.new_condition == (False,) * 3 + (True,)
    assert len(data.features) == 38 and data.features.pooled.shape[2] == info.front_end.n_mels
    assert len(data.probes.source) == 8 * len(probe_cases())
    assert set(data.cases.fault_kinds()) == set(FAULT_KINDS)


def test_auto_chooses_by_synthetic_faults_and_thresholds_the_chosen_detectors_honest_scores(
    collected,
):
    result = run(collected)
    cal, selection = result.calibration, result.selection
    assert cal.selection["asked"] == "auto"
    assert cal.selection["chosen"] == [c.name for c in selection.components]
    assert cal.scorer == "+".join(c.kind for c in selection.components)
    assert len(cal.selection["candidates"]) == len(result.candidates) > 30  # every one judged
    best_single = max(j.objective for j in selection.singles.values())
    # The simplest candidate within TIE of the best is chosen (select.py), fused or not.
    assert selection.judgement.objective >= best_single - TIE
    assert selection.judgement.strong_fault_auc >= 0.6
    np.testing.assert_array_equal(np.concatenate(result.runs), selection.honest.normal)
    assert [len(r) for r in result.runs] == [11, 11, 11, 5]
    again = choose_threshold(
        result.runs, hop_seconds=1.0, window_seconds=10.0, k=3, n=5, quantile=0.9
    )
    assert cal.threshold == pytest.approx(again.threshold)
    assert [c.standardiser for c in cal.detector.components] == list(selection.standardisers)
    assert cal.detector.combiner == selection.combiner
    assert (cal.n_windows, cal.n_recordings) == (38, 4)


def test_a_knn_bank_holds_centres_of_the_main_windows_and_every_new_condition_window_raw(
    collected,
):
    data, _ = collected
    # (knn alone on the tiny model's random embeddings is too blind to be accepted)
    result = run(collected, scorer="knn+twfr")
    knn = result.calibration.detector.components[0]
    options = result.selection.components[0].options
    bank = knn.scorer.bank
    assert bank.shape == (min(options["n_centres"], 33) + 5, data.features.embedding.shape[1])
    np.testing.assert_allclose(bank[-5:], data.features.embedding[-5:], rtol=1e-6)
    # fitted on every window, the final bank scores its own windows lower than honest ones
    own = knn_scores(data.features.embedding, bank)
    honest = result.selection.components[0].honest.normal
    assert np.median(own) < np.median(honest)
    assert knn.standardiser == Standardiser.fit(honest)


def test_a_section_component_scores_the_bound_label_and_fits_nothing(collected):
    data, _ = collected
    # (the section score of the tiny model's random classifier alone is blind)
    result = run(collected, scorer="section+twfr", label="fan/section_00")
    section = result.calibration.detector.components[0]
    raw = section_scores(data.features.logits, [0])
    np.testing.assert_allclose(result.selection.components[0].honest.normal, raw)
    assert section.standardiser == Standardiser.fit(raw)
    # nothing is fitted: the final scorer gives exactly the honest scores
    np.testing.assert_allclose(section.scorer.score(data.features), raw)


@pytest.mark.parametrize(
    ("label", "complaint"),
    [
        (None, "needs a label binding"),
        ("fan", "covers every label of the model"),
        ("pump", "matches none"),
    ],
)
def test_a_section_scorer_that_cannot_serve_the_machine_is_refused(collected, label, complaint):
    with pytest.raises(UserError, match=complaint):
        run(collected, scorer="section", label=label)


def test_asked_kinds_are_fused_with_their_best_options_on_the_fused_honest_scores(collected):
    result = run(collected, scorer="knn+twfr", combiner="max")
    selection = result.selection
    assert [c.kind for c in selection.components] == ["knn", "twfr"]
    assert result.calibration.detector.combiner == "max"
    for member in selection.components:  # the best of its kind on the synthetic faults
        same_kind = [c for c in result.candidates if c.kind == member.kind]
        best = max(same_kind, key=lambda c: selection.singles[c.name].objective)
        # (or the simplest within TIE of it: select.py's rule)
        objective = selection.singles[member.name].objective
        assert objective >= selection.singles[best.name].objective - TIE
    z = [Standardiser.fit(c.honest.normal)(c.honest.normal) for c in selection.components]
    np.testing.assert_allclose(np.concatenate(result.runs), combine(np.stack(z), "max"))
    chosen = run(collected, scorer="knn+twfr")  # no --fusion: the better on the faults
    other = "max" if chosen.selection.combiner == "mean" else "mean"
    _, fused = fuse(chosen.selection.components, other)
    assert chosen.selection.judgement.objective >= judge(fused, collected[0].cases).objective


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"scorer": "knn+bogus"}, "unknown scorer 'bogus'"),
        ({"scorer": "knn+twfr", "combiner": "median"}, "unknown fusion 'median'"),
    ],
)
def test_unknown_scorers_and_fusions_are_refused(collected, settings, complaint):
    with pytest.raises(UserError, match=complaint) as caught:
        run(collected, **settings)
    assert caught.value.exit_code == 2


def test_the_input_level_and_the_detectability_table_are_recorded(collected):
    data, _ = collected
    result = run(collected)
    level = result.calibration.level
    assert level["level_db"] == pytest.approx(np.median(data.features.level_db), abs=1e-3)
    assert len(level["band_levels_db"]) == 8
    table = result.calibration.detectability
    assert list(table) == [*sorted(FAULT_KINDS), GAIN_KIND]
    for kind, row in table.items():
        assert len(row["levels_db"]) == len(row["event_probability"]) == 4, kind
        assert all(0.0 <= p <= 1.0 for p in row["event_probability"])
    assert [r.kind for r in result.rows] == list(table)


def test_constant_honest_scores_are_refused_naming_the_cause(collected):
    with registered(ConstantScorer), pytest.raises(UserError) as caught:
        run(collected, scorer="constant")
    message = str(caught.value)
    assert "constant" in message and "honest normal scores are constant" in message
    assert "tells nothing apart" in message
    assert caught.value.exit_code == 2


def test_auto_leaves_a_kind_with_constant_scores_out_and_says_why(collected):
    with registered(ConstantScorer):
        result = run(collected)
    assert "constant" in result.calibration.selection["left_out"]
    assert "constant" in result.calibration.selection["left_out"]["constant"]
    assert "constant" not in result.calibration.scorer.split("+")


def test_a_detector_that_cannot_tell_strong_faults_from_normal_is_refused(collected):
    with registered(RandomScorer), pytest.raises(UserError) as caught:
        run(collected, scorer="random")
    message = str(caught.value)
    assert "cannot tell strong synthetic faults" in message
    assert "Nothing written" in message


def test_the_report_says_what_was_chosen_the_threshold_the_alarm_rate_and_the_table(collected):
    result = run(collected)
    lines = summary_lines(result)
    text = "\n".join(lines)
    assert lines[0].startswith("detector: ") and "chosen by synthetic faults" in lines[0]
    assert f"threshold {result.calibration.threshold:.4g}" in text
    assert any("expected false alarms" in line and "a day" in line for line in lines)
    for kind in FAULT_KINDS:
        assert any(line.strip().startswith(kind) and "event probability" in line
                   for line in lines), kind  # fmt: skip
    assert "gain change (must not alarm)" in text
    assert f"input level: {result.calibration.level['level_db']:.1f} dB" in text
    png = render_report_png(result, "fan1")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
