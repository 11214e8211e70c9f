"""A machine's scorer: the section or knn score of the engine outputs, chosen by name."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from edge_asd.engines.base import EngineOutput
from edge_asd.errors import UserError
from edge_asd.scoring.fusion import Standardiser
from edge_asd.scoring.scorer import (
    FusedScorer,
    KnnScorer,
    SectionScorer,
    make_scorer,
    scorer_from_calibration,
    section_scorer,
)

LABELS = ("fan/section_00/a", "fan/section_00/b", "fan/section_01/a", "pump/section_00")


def outputs(logits: list[list[float]], embedding: list[list[float]] | None = None) -> EngineOutput:
    logits_array = np.asarray(logits, dtype=np.float32)
    if embedding is None:
        embedding = np.ones((len(logits), 2))
    return EngineOutput(embedding=np.asarray(embedding, dtype=np.float32), logits=logits_array)


def test_a_section_prefix_binds_every_finer_label():
    scorer = section_scorer(LABELS, "fan/section_00")
    assert scorer.label_indices == (0, 1)
    # probability split between the section's two attribute labels: the machine is sure
    out = outputs([[20.0, 20.0, 0.0, 0.0], [0.0, 0.0, 20.0, 0.0]])
    scores = scorer(out)
    assert scores[0] == pytest.approx(0.0, abs=1e-6)
    assert scores[1] == pytest.approx(20.0 - np.log(2.0), abs=1e-3)  # two labels of e^0 each


def test_knn_scorer_uses_the_bank():
    scorer = make_scorer("knn", LABELS, bank=np.array([[1.0, 0.0]]))
    assert isinstance(scorer, KnnScorer) and scorer.kind == "knn"
    out = outputs([[0, 0, 0, 0]] * 2, embedding=[[2.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(scorer(out), [0.0, 1.0], atol=1e-7)


def test_make_scorer_by_name():
    assert make_scorer("section", LABELS, binding="pump") == SectionScorer((3,))


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("section", {}, "needs a label"),
        ("section", {"binding": "valve"}, "matches none"),
        ("knn", {}, "needs a memory bank"),
        ("knn", {"bank": np.zeros((0, 2))}, "needs a memory bank"),
        ("twfr", {}, "needs its fitted mixture"),
        ("psychic", {}, "unknown scorer 'psychic'"),
    ],
)
def test_what_a_scorer_needs_is_checked(kind, kwargs, message):
    with pytest.raises(UserError, match=message) as caught:
        make_scorer(kind, LABELS, source="cal.yaml", **kwargs)
    if kind != "section" or "binding" not in kwargs:
        assert str(caught.value).startswith("cal.yaml: ")


@dataclass
class FakeCalibration:
    """The fields of a calibration that scorer_from_calibration reads."""

    scorer: str
    label: str | None = "fan/section_00"
    bank: np.ndarray | None = None
    arrays: dict = field(default_factory=dict)
    scorer_params: dict = field(default_factory=dict)


def test_a_fused_calibration_gives_the_mean_of_each_scorers_z_score():
    params = {
        "combiner": "mean",
        "section": {"standardiser": {"mean": 1.0, "std": 2.0}},
        "knn": {"standardiser": {"mean": 0.5, "std": 0.25}},
    }
    calibration = FakeCalibration("section+knn", bank=np.array([[1.0, 0.0]]), scorer_params=params)
    scorer = scorer_from_calibration(calibration, LABELS, "cal.yaml")
    assert isinstance(scorer, FusedScorer) and scorer.kind == "section+knn"
    assert scorer.standardisers["knn"] == Standardiser(0.5, 0.25)
    out = outputs([[0.0, 0.0, 0.0, 0.0]], embedding=[[0.0, 1.0]])  # knn distance 1
    section = -np.log(0.5)  # two of four equal logits are the machine's
    expected = ((section - 1.0) / 2.0 + (1.0 - 0.5) / 0.25) / 2
    np.testing.assert_allclose(scorer(out), [expected])


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        ("section+knn", {"knn": {"standardiser": {"mean": 0, "std": 1}}}, "section.standardiser"),
        (
            "section+knn",
            {
                "section": {"standardiser": {"mean": 0, "std": 0}},
                "knn": {"standardiser": {"mean": 0, "std": 1}},
            },
            "std > 0",
        ),
        ("section+psychic", {}, "psychic"),
        ("twfr", {}, "twfr_"),
    ],
)
def test_a_calibration_missing_what_its_scorers_need_is_refused(spec, params, message):
    calibration = FakeCalibration(spec, bank=np.ones((1, 2)), scorer_params=params)
    with pytest.raises(UserError, match=message) as caught:
        scorer_from_calibration(calibration, LABELS, "cal.yaml")
    assert "cal.yaml" in str(caught.value)
