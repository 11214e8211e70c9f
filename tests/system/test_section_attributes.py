"""The section scorer on a model trained with section and attribute labels: a machine
bound to its section (`fan/section_00`, two attribute labels) is scored by how unlikely
the model finds the likeliest of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_asd.calibration.build import Settings, calibrate
from edge_asd.calibration.select import GAIN_KIND
from edge_asd.engines import open_engine
from edge_asd.metrics import auc
from edge_asd.model_file import load_model_info
from edge_asd.scoring.registry import FitContext, FitData
from edge_asd.scoring.section import SectionScorer, usable_binding
from edge_asd.synth import render_clip, write_wav
from tests.harness.calibration import collect_files

pytestmark = [pytest.mark.system, pytest.mark.slow]

BINDING = "fan/section_00"


@pytest.fixture(scope="module")
def collected(attribute_model: Path, tmp_path_factory):
    """Three fresh recordings of the section's machine, collected as `calibrate` does."""
    folder = tmp_path_factory.mktemp("section_00")
    paths = []
    for i in range(3):
        paths.append(folder / f"run_{i}.wav")
        write_wav(paths[-1], render_clip("fan", 0, "source", 30.0, seed=100 + i))
    engine = open_engine(attribute_model, threads=2)
    try:
        return collect_files(engine, paths, n_probes=8), engine.info
    finally:
        engine.close()


def test_the_section_prefix_binds_both_attribute_labels_and_the_type_every_label(
    attribute_model,
):
    labels = load_model_info(attribute_model).labels
    assert len(labels) == 6
    indices, why_not = usable_binding(labels, BINDING)
    assert why_not is None
    assert [labels[i] for i in indices] == [
        "fan/section_00/speed_100",
        "fan/section_00/speed_118",
    ]
    assert "covers every label of the model (6)" in usable_binding(labels, "fan")[1]


def test_a_section_bound_machine_gets_a_varying_score_that_ranks_faults_above_normals(collected):
    data, info = collected
    scorer = SectionScorer.fit(FitData(data.features), {}, FitContext.of_model(info, BINDING))
    normal = scorer.score(data.features)
    probes = scorer.score(data.probes.features)
    assert np.std(normal) > 0.1  # log-odds units: varies, not rounding noise
    cases = data.cases
    faults = cases.kind != GAIN_KIND
    strongest = faults & (cases.level_db == cases.level_db[faults].max())
    assert strongest.sum() == 8 * 5  # every probe, each fault kind at -5 dB
    assert auc(normal, probes[strongest]) > 0.7


def test_a_section_calibration_of_the_bound_machine_is_accepted(collected):
    data, info = collected
    settings = Settings(machine="fan1", scorer="section", label=BINDING, quantile=0.99)
    result = calibrate(data, settings, info)
    assert result.calibration.scorer == "section"
