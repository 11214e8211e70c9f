"""Building the daemon's parts from the config: deciders from calibration plus overrides."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.calibration.file import Calibration
from edge_asd.config.schema import DecisionConfig, MachineConfig
from edge_asd.daemon.wiring import MachineRuntime, make_decider
from edge_asd.errors import ConfigError
from edge_asd.scoring.detector import Component, Detector, Standardiser
from edge_asd.scoring.knn import KnnScorer

DETECTOR = Detector((Component(KnnScorer(np.eye(2, dtype=np.float32), 2), Standardiser(0, 1)),))


def calibration(**changes) -> Calibration:
    fields = dict(
        machine="pump-1", label="fan/section_00", detector=DETECTOR, threshold=0.5, k=3, n=5,
        m_close=4, hop_seconds=1.0, model_sha256="0" * 64, method="quantile",
        method_params={}, n_windows=100, n_recordings=2, audio_seconds=110.0,
        expected_false_alarms_per_day=1.0,
    )  # fmt: skip
    return Calibration(**{**fields, **changes})


def machine(**changes) -> MachineConfig:
    fields = dict(
        name="pump-1", source="mic", channel=0, calibration="cal.yaml", label=None,
        decision=DecisionConfig(), rms_gate_dbfs=None,
    )  # fmt: skip
    return MachineConfig.model_construct(**{**fields, **changes})


def test_the_decider_takes_the_calibrations_threshold_and_k_of_n():
    decider = make_decider(machine(), calibration(), "machines[0]")
    assert (decider.threshold, decider.k, decider.n, decider.m_close) == (0.5, 3, 5, 4)
    assert decider.rms_gate is None


def test_the_config_overrides_k_of_n_where_it_says_so():
    decider = make_decider(machine(decision=DecisionConfig(k=1, m_close=2)), calibration(), "m")
    assert (decider.k, decider.n, decider.m_close) == (1, 5, 2)


def test_an_override_that_breaks_k_of_n_names_the_machine():
    with pytest.raises(ConfigError, match=r"machines\[0\]\.decision: k=6, n=5") as caught:
        make_decider(machine(decision=DecisionConfig(k=6)), calibration(), "machines[0]")
    assert caught.value.exit_code == 2


def test_the_rms_gate_in_dbfs_becomes_full_scale_rms():
    decider = make_decider(machine(rms_gate_dbfs=-20.0), calibration(), "m")
    assert decider.rms_gate == pytest.approx(0.1)
    assert decider.feed(9.0, 0.0, rms=0.05) == [] and decider.state == "unknown"


def test_a_windows_level_offset_is_its_level_minus_the_calibrations():
    cal = calibration(level={"level_db": -12.5, "band_levels_db": [-12.5] * 8})
    runtime = MachineRuntime("pump-1", "mic", cal, make_decider(machine(), cal, "m"))
    assert runtime.detector is DETECTOR
    assert runtime.level_offset_db(-6.5) == pytest.approx(6.0)
    assert runtime.level_offset_db(-15.5) == pytest.approx(-3.0)
    unrecorded = calibration()  # a calibration without a level: no offset, not a guess
    assert MachineRuntime("p", "mic", unrecorded, None).level_offset_db(-6.5) is None


def test_a_level_far_from_the_calibrations_is_said_once_and_its_return_too():
    runtime = MachineRuntime("pump-1", "mic", calibration(level={"level_db": -30.0}), None)
    assert runtime.level_offset_db(-18.0) == pytest.approx(12.0)
    said = [runtime.level_change(offset) for offset in (None, 1.0, 5.9, 12.0, 12.5, 7.0, 0.4)]
    assert said[:3] == [None, None, None]  # unsettled, then within 6 dB
    assert said[3].startswith("pump-1: the input is 12.0 dB louder than at calibration")
    assert said[4:6] == [None, None]  # still beyond: said once
    assert said[6] == "pump-1: the input level is back near calibration's (+0.4 dB)"
    assert runtime.level_change(-9.0).startswith("pump-1: the input is 9.0 dB quieter")
