"""The machine sound generator: deterministic, seamless, and faults change the sound."""

from __future__ import annotations

import re

import numpy as np

from edge_asd.audio import SAMPLE_RATE, read_audio
from edge_asd.synth import (
    FAULTS,
    Fault,
    MachineSynth,
    render_clip,
    section_profile,
    write_dcase_tree,
)

NAME = re.compile(
    r"section_(\d{2})_(source|target)_(train|test)_(normal|anomaly)_(\d{4})_speed_(\d+)\.wav"
)


def band_energy(x: np.ndarray, low_hz: float, high_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return float(spectrum[(freqs >= low_hz) & (freqs < high_hz)].sum() / spectrum.sum())


def test_same_seed_gives_the_same_clip():
    a = render_clip("fan", 0, "source", 1.0, seed=3)
    b = render_clip("fan", 0, "source", 1.0, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (SAMPLE_RATE,)
    assert 0.01 < np.abs(a).max() <= 1.0


def test_sections_and_domains_differ_in_shaft_rate():
    rates = {section_profile("fan", s, "source").shaft_hz for s in range(4)}
    assert len(rates) == 4
    source, target = section_profile("fan", 0, "source"), section_profile("fan", 0, "target")
    assert target.shaft_hz > 1.1 * source.shaft_hz


def test_chunks_join_without_a_phase_jump():
    profile = section_profile("pump", 1)
    profile = type(profile)(**{**profile.__dict__, "noise_level": 0.0})
    whole = MachineSynth(profile, seed=5).render(8000)
    stream = MachineSynth(profile, seed=5)
    chunked = np.concatenate([stream.render(n) for n in (1000, 3000, 4000)])
    np.testing.assert_allclose(chunked, whole, atol=2e-3)


def test_a_stream_rendered_in_live_blocks_is_the_stream_rendered_whole_noise_included():
    # The daemon's synthetic source renders 0.1 s blocks; the noise was shaped per block
    # and clicked at every edge, so the demo's live normal sound scored as anomalous.
    block = SAMPLE_RATE // 10
    whole = MachineSynth(section_profile("fan", 0), seed=4242).render(30 * block)
    stream = MachineSynth(section_profile("fan", 0), seed=4242)
    blocks = np.concatenate([stream.render(block) for _ in range(30)])
    np.testing.assert_allclose(blocks, whole, atol=1e-6)
    steps = np.abs(np.diff(blocks.astype(np.float64)))
    assert steps[block - 1 :: block].mean() < 1.5 * steps.mean()  # no seam at block edges


def test_each_fault_adds_energy_where_it_should():
    profile = section_profile("fan", 0)
    normal = MachineSynth(profile, seed=1).render(SAMPLE_RATE)
    bands = {"impacts": (2800, 3400), "tone": (1350, 1390), "rubbing": (4000, 7000)}
    for kind, (low, high) in bands.items():
        faulty = MachineSynth(profile, seed=1, faults=(Fault(kind, 0.0, 2.0),)).render(SAMPLE_RATE)
        assert band_energy(faulty, low, high) > 3 * band_energy(normal, low, high), kind
    shifted = MachineSynth(profile, seed=1, faults=(Fault("harmonic_shift", 0.0, 2.0),))
    assert not np.allclose(shifted.render(SAMPLE_RATE), normal, atol=1e-3)


def test_faults_are_confined_to_their_time_range():
    profile = section_profile("fan", 0)
    plain = MachineSynth(profile, seed=2).render(3 * SAMPLE_RATE)
    faulty = MachineSynth(profile, seed=2, faults=(Fault("tone", 1.0, 2.0),)).render(
        3 * SAMPLE_RATE
    )
    changed = np.flatnonzero(np.abs(plain - faulty) > 1e-6)
    assert changed.min() >= SAMPLE_RATE and changed.max() < 2 * SAMPLE_RATE


def test_dcase_tree_has_the_dcase_layout_and_reads_back(tmp_path):
    paths = write_dcase_tree(
        tmp_path,
        machine_types=("fan",),
        sections=(0, 1),
        train_per_section=2,
        test_per_domain=2,
        seconds=1.0,
    )
    names = [p.name for p in paths]
    assert all(NAME.fullmatch(n) for n in names), names
    anomalies = [n for n in names if "_anomaly_" in n]
    assert len(anomalies) == 2 * 2 * 2  # sections x domains x test_per_domain
    assert {p.parent.name for p in paths} == {"train", "test"}
    audio = read_audio(paths[0])
    assert audio.sample_rate == SAMPLE_RATE and audio.samples.shape == (SAMPLE_RATE, 1)
    assert len(FAULTS) == 4
