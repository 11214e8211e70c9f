"""Synthetic faults: exact levels, determinism, and the signature each kind claims."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asd.audio import SAMPLE_RATE
from edge_asd.faults import (
    DEFAULT_LEVELS_DB,
    FAULT_KINDS,
    GAIN_CHANGES_DB,
    KINDS,
    MAX_BAND_GAIN_DB,
    add_fault,
    apply_gain,
    fault_level_db,
)
from edge_asd.synth import render_clip

SECONDS = 10.0


@pytest.fixture(scope="module")
def fan() -> np.ndarray:
    return render_clip("fan", 0, "source", SECONDS, seed=1)


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(round(SECONDS * SAMPLE_RATE))).astype(np.float32)


@pytest.fixture(params=["fan", "noise"])
def window(request: pytest.FixtureRequest) -> np.ndarray:
    return request.getfixturevalue(request.param)


def change_of(window: np.ndarray, kind: str, level_db: float, seed: int = 0) -> np.ndarray:
    faulted = add_fault(window, kind, level_db, np.random.default_rng(seed))
    return faulted.astype(np.float64) - window.astype(np.float64)


def kurtosis(x: np.ndarray) -> float:
    x = x - x.mean()
    return float(np.mean(x**4) / np.mean(x**2) ** 2)


def crest_factor(x: np.ndarray) -> float:
    return float(np.abs(x).max() / np.sqrt(np.mean(x**2)))


def welch_power(x: np.ndarray, n_fft: int = 1024) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2]
    return np.mean(np.abs(np.fft.rfft(frames * np.hanning(n_fft))) ** 2, axis=0)


def share_of_frames_holding(x: np.ndarray, share: float, frame: int = 512) -> float:
    """Smallest fraction of frames that together hold `share` of the energy of `x`."""
    energies = np.sort(np.sum(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    cumulative = np.cumsum(energies[::-1]) / energies.sum()
    return (np.searchsorted(cumulative, share) + 1) / len(energies)


def best_octave_share(x: np.ndarray) -> float:
    """Largest share of the energy of `x` inside any one octave [f, 2f]."""
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE)
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    lows = np.geomspace(20.0, SAMPLE_RATE / 4, 600)
    inside = cumulative[np.searchsorted(freqs, 2 * lows)] - cumulative[np.searchsorted(freqs, lows)]
    return float(inside.max() / cumulative[-1])


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_kind_reaches_each_default_level_within_a_hundredth_of_a_db(window, kind):
    for level_db in DEFAULT_LEVELS_DB:
        faulted = add_fault(window, kind, level_db, np.random.default_rng(7))
        assert fault_level_db(window, faulted) == pytest.approx(level_db, abs=0.01)


def test_kinds_are_registered_under_their_names_with_meaning_and_source():
    assert FAULT_KINDS == ("impulses", "tone", "burst", "modulation", "band")
    for name, kind in KINDS.items():
        assert kind.name == name and kind.meaning and kind.source


def test_modulation_stops_at_full_depth_when_asked_for_more(fan):
    change = change_of(fan, "modulation", 0.0)
    assert fault_level_db(fan, fan + change) == pytest.approx(-3.0, abs=0.3)
    assert np.all(np.abs(change) <= np.abs(fan) * (1 + 1e-5) + 1e-7)  # depth m <= 1


def test_band_gain_stops_at_its_cap_without_nan(noise):
    faulted = add_fault(noise, "band", 60.0, np.random.default_rng(0))
    assert np.all(np.isfinite(faulted))
    assert fault_level_db(noise, faulted) < 60.0
    gain = np.abs(np.fft.rfft(faulted)) / np.abs(np.fft.rfft(noise))
    assert 20 * np.log10(gain.max()) == pytest.approx(MAX_BAND_GAIN_DB, abs=0.01)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_same_seed_gives_the_same_fault_and_another_seed_another(fan, kind):
    a = add_fault(fan, kind, -10.0, np.random.default_rng(1))
    b = add_fault(fan, kind, -10.0, np.random.default_rng(1))
    c = add_fault(fan, kind, -10.0, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_faulted_window_is_finite_float32_of_the_same_length_and_input_untouched(fan, kind):
    before = fan.copy()
    faulted = add_fault(fan, kind, -5.0, np.random.default_rng(3))
    assert faulted.dtype == np.float32 and faulted.shape == fan.shape
    assert np.all(np.isfinite(faulted))
    np.testing.assert_array_equal(fan, before)


@pytest.mark.parametrize("seed", range(3))
def test_impulses_raise_kurtosis_and_crest_factor_far_more_than_a_tone(window, seed):
    x = window.astype(np.float64)
    impulses = x + change_of(window, "impulses", -10.0, seed)
    tone = x + change_of(window, "tone", -10.0, seed)
    assert kurtosis(impulses) - kurtosis(x) > 0.5
    assert abs(kurtosis(tone) - kurtosis(x)) < 0.1
    assert crest_factor(impulses) > 1.4 * crest_factor(x)
    assert crest_factor(tone) < 1.1 * crest_factor(x)


@pytest.mark.parametrize("seed", range(3))
def test_tone_puts_its_energy_in_a_few_fft_bins(fan, seed):
    power = welch_power(change_of(fan, "tone", -20.0, seed))
    peak = int(np.argmax(power))
    assert power[max(0, peak - 4) : peak + 5].sum() > 0.95 * power.sum()  # 9 of 513 bins


@pytest.mark.parametrize("seed", range(3))
def test_burst_energy_is_concentrated_in_a_small_fraction_of_the_time(window, seed):
    assert share_of_frames_holding(change_of(window, "burst", -10.0, seed), 0.9) < 0.25
    assert share_of_frames_holding(change_of(window, "tone", -10.0, seed), 0.9) > 0.8


@pytest.mark.parametrize("seed", range(3))
def test_modulation_is_the_window_times_a_slow_envelope_at_the_modulation_rate(window, seed):
    x = window.astype(np.float64)
    change = change_of(window, "modulation", -10.0, seed)
    frame = 32  # 2 ms: the envelope (<= 20 Hz) is nearly constant within a frame
    frames_x, frames_c = (a[: len(a) // frame * frame].reshape(-1, frame) for a in (x, change))
    envelope = np.sum(frames_c * frames_x, axis=1) / np.sum(frames_x**2, axis=1)
    residual = change[: frames_x.size] - np.repeat(envelope, frame) * x[: frames_x.size]
    assert np.sum(residual**2) < 0.02 * np.sum(change**2)
    spectrum = np.abs(np.fft.rfft(envelope * np.hanning(len(envelope)))) ** 2
    rates_hz = np.fft.rfftfreq(len(envelope), frame / SAMPLE_RATE)
    peak = int(np.argmax(spectrum))
    assert 1.0 <= rates_hz[peak] <= 20.0
    assert spectrum[max(0, peak - 3) : peak + 4].sum() > 0.95 * spectrum.sum()


@pytest.mark.parametrize("seed", range(3))
def test_band_change_lies_within_one_octave(window, seed):
    assert best_octave_share(change_of(window, "band", -10.0, seed)) > 0.99


@pytest.mark.parametrize("gain_db", GAIN_CHANGES_DB)
def test_gain_change_has_the_expected_level_and_round_trips(fan, gain_db):
    louder = apply_gain(fan, gain_db)
    expected_db = 20 * np.log10(abs(10 ** (gain_db / 20) - 1))
    assert louder.dtype == np.float32
    assert fault_level_db(fan, louder) == pytest.approx(expected_db, abs=0.01)
    np.testing.assert_allclose(apply_gain(louder, -gain_db), fan, rtol=1e-5, atol=1e-7)


def test_unknown_kind_is_refused_naming_the_known_ones(fan):
    with pytest.raises(ValueError, match="impulses, tone, burst, modulation, band"):
        add_fault(fan, "squeak", -10.0, np.random.default_rng(0))


@pytest.mark.parametrize(
    "bad",
    [np.ones((2, 100), np.float32), np.ones(100, np.int16), np.zeros(100, np.float32)],
    ids=["2-D", "integer", "all-zero"],
)
def test_windows_without_a_level_to_be_relative_to_are_refused(bad):
    with pytest.raises(ValueError, match="window"):
        add_fault(bad, "tone", -10.0, np.random.default_rng(0))


def test_a_window_silent_in_every_octave_gets_no_band_change_and_no_nan():
    dc = np.full(SAMPLE_RATE, 0.1, np.float32)  # energy only at 0 Hz, below every octave
    faulted = add_fault(dc, "band", -10.0, np.random.default_rng(0))
    np.testing.assert_array_equal(faulted, dc)
