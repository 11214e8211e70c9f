"""Synthetic machine faults made from a machine's own normal sound, at exact levels.

Calibration judges its choices (scorer, pooling, ...) by how well they separate held-out
normal windows from these faults made from the same windows. Same rng seed, same fault.

Level ("fault-to-machine ratio"), one definition for all kinds: the energy of the change
(faulted - normal) relative to that of the normal window, in dB (`fault_level_db`).
`add_fault` hits it within 0.01 dB, or stops at a kind's cap, never giving NaN or inf.
Output is not clipped to [-1, 1]: the model takes floats, and clipping changes the level.
Caps: `modulation` depth m <= 1 (deeper reverses the sound's phase, which no loose mount
does), about -3 dB. `band` gain <= +30 dB on an octave holding >= 1 % of the window's
energy (a resonance the machine has; a silent band boosted would be a new source, i.e.
`tone` or `burst`), so up to about +9.7 dB.

`DEFAULT_LEVELS_DB` tops out at -5 dB, the loudest every kind reaches on steady sound, so
a level means the same for every kind; at -30 dB the stationary kinds are near a machine's
own variation (m ~ 0.045, a band boost of 0.3-2.4 dB). The must-not-alarm
`GAIN_CHANGES_DB` have change levels of -19 to -8 dB, above the subtlest faults: the level
is a scale, not a measure of audibility.

Transient kinds (`impulses`, `burst`) favour max-like pooling over time, stationary ones
(`tone`, `modulation`, `band`) mean-like pooling, hence calibrating on both: Dohi et al.
(2023), "Description and discussion on DCASE 2023 challenge task 2: first-shot
unsupervised anomalous sound detection for machine condition monitoring",
arXiv:2305.07828; Guan et al. (ICASSP 2023), "Time-weighted frequency domain audio
representation with GMM estimator for anomalous sound detection", arXiv:2305.03328.
A spectral tilt was considered and left out: a broad change, it would be a sixth kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_asd.audio import SAMPLE_RATE

DEFAULT_LEVELS_DB: tuple[float, ...] = (-30.0, -20.0, -10.0, -5.0)
GAIN_CHANGES_DB: tuple[float, ...] = (-3.0, -1.0, 1.0, 3.0)  # must-not-alarm cases

MIN_SAMPLE_RATE = 8000  # the generators' frequency ranges assume at least this
MAX_ABS_LEVEL_DB = 100.0  # beyond it float32 output could overflow; no use anyway
IMPULSES_PER_SECOND = (2.0, 6.0)
IMPULSE_RESONANCE_HZ = (1000.0, 6000.0)
IMPULSE_DECAY_SECONDS = (0.001, 0.004)  # time constant of the ringing
TONE_HZ = (150.0, 6000.0)
TONE_WOBBLE = (0.0005, 0.0025)  # peak frequency deviation, relative to the tone
TONE_WOBBLE_HZ = (0.1, 1.0)
BURSTS_PER_SECOND = (0.2, 0.6)
BURST_SECONDS = (0.05, 0.5)
BURST_HIGHPASS_HZ = (1000.0, 4000.0)
MODULATION_HZ = (1.0, 20.0)
MAX_MODULATION_DEPTH = 1.0
BAND_LOWEST_CENTRE_HZ = 100.0
BAND_MIN_SHARE = 0.01  # least share of the window's energy an eligible octave holds
MAX_BAND_GAIN_DB = 30.0


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault: what it stands for, where the idea comes from, its generator.

    `make(window, level_db, rng, sample_rate)` takes a float64 [samples] window and
    returns the change to add, float64 [samples], at `level_db` (or at the kind's cap).
    """

    name: str
    meaning: str
    source: str
    make: Callable[[np.ndarray, float, np.random.Generator, int], np.ndarray]


def _energy(x: np.ndarray) -> float:
    return float(np.sum(np.square(x, dtype=np.float64)))


def _to_level(
    shape: np.ndarray, window: np.ndarray, level_db: float, max_scale: float = np.inf
) -> np.ndarray:
    """`shape` scaled to `level_db` relative to `window`, the scale at most `max_scale`.

    A shape with no energy (a band where the window is silent) stays zero: no NaN.
    """
    if _energy(shape) == 0.0:
        return shape
    scale = np.sqrt(_energy(window) * 10.0 ** (level_db / 10.0) / _energy(shape))
    return min(scale, max_scale) * shape


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _impulses(window: np.ndarray, level_db: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Poisson-timed impacts, each a decaying sinusoid at one structural resonance.

    The rate is drawn from IMPULSES_PER_SECOND, the resonance from IMPULSE_RESONANCE_HZ
    (below 0.45 sr) and its decay from IMPULSE_DECAY_SECONDS; each impact jitters in
    amplitude (0.5-1) and resonance (2 % rms), as slip and load make real impacts do.
    After McFadden & Smith (1984) and Randall & Antoni (2011).
    """
    n = len(window)
    count = max(1, int(rng.poisson(rng.uniform(*IMPULSES_PER_SECOND) * n / sr)))
    starts = rng.integers(0, n, count)  # given their count, Poisson times are uniform
    resonance_hz = rng.uniform(IMPULSE_RESONANCE_HZ[0], min(IMPULSE_RESONANCE_HZ[1], 0.45 * sr))
    decay_s = rng.uniform(*IMPULSE_DECAY_SECONDS)
    amplitudes = rng.uniform(0.5, 1.0, count)
    frequencies = resonance_hz * (1.0 + 0.02 * rng.standard_normal(count))
    t = np.arange(int(8 * decay_s * sr)) / sr  # rings down to e^-8 (-70 dB)
    shape = np.zeros(n)
    for start, amplitude, frequency in zip(starts, amplitudes, frequencies, strict=True):
        ring = amplitude * np.exp(-t / decay_s) * np.sin(2 * np.pi * frequency * t)
        stop = min(n, start + len(ring))
        shape[start:stop] += ring[: stop - start]
    return _to_level(shape, window, level_db)


def _tone(window: np.ndarray, level_db: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A sinusoid at a log-uniform frequency in TONE_HZ with a slow, slight wobble."""
    n = len(window)
    tone_hz = _log_uniform(rng, TONE_HZ[0], min(TONE_HZ[1], 0.45 * sr))
    wobble = rng.uniform(*TONE_WOBBLE)
    wobble_hz = rng.uniform(*TONE_WOBBLE_HZ)
    wobble_phase, phase = rng.uniform(0, 2 * np.pi, 2)
    t = np.arange(n) / sr
    frequency = tone_hz * (1.0 + wobble * np.sin(2 * np.pi * wobble_hz * t + wobble_phase))
    shape = np.sin(phase + 2 * np.pi * np.cumsum(frequency) / sr)
    return _to_level(shape, window, level_db)


def _burst_envelope(n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """0..1 envelope of Poisson-timed bursts, each with raised-cosine onset and decay."""
    count = max(1, int(rng.poisson(rng.uniform(*BURSTS_PER_SECOND) * n / sr)))
    envelope = np.zeros(n)
    for _ in range(count):
        length = min(n, max(2, int(rng.uniform(*BURST_SECONDS) * sr)))
        start = int(rng.integers(0, n - length + 1))
        ramp = max(1, length // 5)  # onsets of 10-100 ms: a leak opens, it does not click
        shape = np.ones(length)
        shape[:ramp] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        shape[length - ramp :] = shape[:ramp][::-1]
        envelope[start : start + length] = np.maximum(envelope[start : start + length], shape)
    return envelope


def _burst(window: np.ndarray, level_db: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Noise bursts of BURST_SECONDS; half the time high-passed at BURST_HIGHPASS_HZ."""
    n = len(window)
    noise = rng.standard_normal(n)
    if rng.random() < 0.5:  # cavitation and leaks hiss high; rubbing is broadband
        spectrum = np.fft.rfft(noise)
        spectrum[np.fft.rfftfreq(n, 1.0 / sr) < _log_uniform(rng, *BURST_HIGHPASS_HZ)] = 0.0
        noise = np.fft.irfft(spectrum, n)
    return _to_level(_burst_envelope(n, rng, sr) * noise, window, level_db)


def _modulation(
    window: np.ndarray, level_db: float, rng: np.random.Generator, sr: int
) -> np.ndarray:
    """The window times m sin(2 pi f t + phi), f log-uniform in MODULATION_HZ, m <= 1."""
    rate_hz = _log_uniform(rng, *MODULATION_HZ)
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(len(window)) / sr
    shape = window * np.sin(2 * np.pi * rate_hz * t + phase)
    return _to_level(shape, window, level_db, max_scale=MAX_MODULATION_DEPTH)


def _octave_weight(freqs: np.ndarray, centre_hz: float) -> np.ndarray:
    """0..1 gain shape of one octave around `centre_hz`: flat over the middle half-octave,
    raised-cosine edges, zero outside [centre / sqrt(2), centre * sqrt(2)]."""
    distance = np.abs(np.log2(np.maximum(freqs, 1e-9) / centre_hz))  # in octaves
    edge = np.clip((distance - 0.25) / 0.25, 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.pi * edge)


def _band(window: np.ndarray, level_db: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """One octave of the window boosted by an FFT gain with smooth edges (<= +30 dB).

    The centre is drawn from a third-octave grid among octaves holding at least
    BAND_MIN_SHARE of the window's energy (the strongest one if none does).
    """
    n = len(window)
    spectrum = np.fft.rfft(window)
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    power = np.abs(spectrum) ** 2
    top = int(np.floor(3 * np.log2(sr / 2 / np.sqrt(2) / BAND_LOWEST_CENTRE_HZ)))
    centres = BAND_LOWEST_CENTRE_HZ * 2.0 ** (np.arange(top + 1) / 3)
    shares = np.array([np.sum(_octave_weight(freqs, c) ** 2 * power) for c in centres])
    shares /= np.sum(power)
    eligible = centres[shares >= BAND_MIN_SHARE]
    centre_hz = rng.choice(eligible) if len(eligible) else centres[np.argmax(shares)]
    shape = np.fft.irfft(spectrum * _octave_weight(freqs, centre_hz), n)
    max_scale = 10.0 ** (MAX_BAND_GAIN_DB / 20.0) - 1.0  # the band's gain is 1 + scale
    return _to_level(shape, window, level_db, max_scale=max_scale)


_RANDALL_2011 = (
    "Randall (2011), Vibration-based Condition Monitoring: Industrial, Aerospace and "
    "Automotive Applications, Wiley"
)
_MIMII = "Purohit et al. (2019), MIMII dataset (DCASE 2019 Workshop), arXiv:1909.09347"

KINDS: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        FaultKind(
            "impulses",
            "Impacts exciting a structural resonance at random times: a bearing defect, a "
            "loose part knocking, a valve chattering (bearings, fans, pumps, valves).",
            "Randall & Antoni (2011), Rolling element bearing diagnostics - a tutorial, MSSP "
            "25(2):485-520; McFadden & Smith (1984), Model for the vibration produced by a "
            "single point defect in a rolling element bearing, JSV 96(1):69-82",
            _impulses,
        ),
        FaultKind(
            "tone",
            "A new narrow tonal component: whine from gear-mesh wear or a failing bearing "
            "cage, electrical hum, a newly excited resonance (gearboxes, motors, fans).",
            _RANDALL_2011,
            _tone,
        ),
        FaultKind(
            "burst",
            "Intermittent broadband or high-frequency noise bursts with smooth onsets: "
            "cavitation in a pump, an air or steam leak, rubbing contact (pumps, valves).",
            f"{_MIMII} (leakage, contamination); simulation is this module's own",
            _burst,
        ),
        FaultKind(
            "modulation",
            "The machine's own sound amplitude-modulated at 1-20 Hz: imbalance, "
            "misalignment, a loose mount or a damaged blade at the shaft rate (fans, motors).",
            f"{_RANDALL_2011}; {_MIMII} (rotating unbalance)",
            _modulation,
        ),
        FaultKind(
            "band",
            "One octave of the machine's own sound boosted: a shifted resonance or wear "
            "changing the timbre (any machine).",
            f"{_RANDALL_2011} (changes of the structural response); the FFT-band gain is "
            "this module's own construction",
            _band,
        ),
    )
}
FAULT_KINDS: tuple[str, ...] = tuple(KINDS)


def _float64_samples(window: np.ndarray) -> np.ndarray:
    """`window` as a float64 [samples] copy; ValueError unless it is 1-D float."""
    window = np.asarray(window)
    if window.ndim != 1 or not np.issubdtype(window.dtype, np.floating):
        raise ValueError(f"a window must be 1-D float, not {window.dtype} {window.shape}")
    return window.astype(np.float64)


def _checked_window(window: np.ndarray) -> np.ndarray:
    """`window` as float64 [samples]; ValueError unless 1-D float, finite and not silent."""
    window = _float64_samples(window)
    if not np.all(np.isfinite(window)):
        raise ValueError("a window must be finite (no NaN or inf)")
    if not np.any(window):
        raise ValueError("an all-zero window has no level to be relative to")
    return window


def add_fault(
    window: np.ndarray,
    kind: str,
    level_db: float,
    rng: np.random.Generator,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """float32 [samples] copy of `window` with a fault of `kind` added at `level_db`.

    The change's energy is `level_db` relative to the window's (see the module docstring),
    within 0.01 dB or at the kind's cap. Not clipped to [-1, 1]. Raises ValueError for an
    unknown kind, a window that is not 1-D float, non-finite or all zero, a level beyond
    +-MAX_ABS_LEVEL_DB or a sample rate below MIN_SAMPLE_RATE.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known kinds: {', '.join(FAULT_KINDS)}")
    x = _checked_window(window)
    if not abs(level_db) <= MAX_ABS_LEVEL_DB:
        raise ValueError(f"level_db must be within +-{MAX_ABS_LEVEL_DB} dB, not {level_db}")
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be at least {MIN_SAMPLE_RATE} Hz, not {sample_rate}")
    change = KINDS[kind].make(x, float(level_db), rng, sample_rate)
    return (x + change).astype(np.float32)


def apply_gain(window: np.ndarray, gain_db: float) -> np.ndarray:
    """float32 copy of `window` scaled by `gain_db`: a microphone or gain change, not a fault.

    Its change level is 20 log10|10^(gain_db / 20) - 1| dB. Raises ValueError unless the
    window is 1-D float.
    """
    return (_float64_samples(window) * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def fault_level_db(window: np.ndarray, faulted: np.ndarray) -> float:
    """10 log10(||faulted - window||^2 / ||window||^2), in dB; -inf when they are equal.

    Raises ValueError when their shapes differ or the window is all zero.
    """
    window = np.asarray(window, dtype=np.float64)
    faulted = np.asarray(faulted, dtype=np.float64)
    if window.shape != faulted.shape:
        raise ValueError(f"shapes differ: window {window.shape}, faulted {faulted.shape}")
    window_energy = _energy(window)
    if window_energy == 0.0:
        raise ValueError("an all-zero window has no level to be relative to")
    change_energy = _energy(faulted - window)
    if change_energy == 0.0:
        return -np.inf
    return float(10.0 * np.log10(change_energy / window_energy))
