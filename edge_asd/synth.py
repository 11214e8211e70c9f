"""Machine-like sound, generated with numpy alone, for tests and the demo.

A rotating machine: harmonics of a shaft rate (with a slow speed and amplitude drift),
coloured broadband noise and a structural resonance. A `section` is a distinct machine
(its own shaft rate, harmonic pattern and noise colour); the `target` domain runs the same
machine at another speed and load. Faults can be injected over a time range: bearing-like
impacts, a new tone, a shifted harmonic, or rubbing noise.

It never stands in for real recordings where those exist (`../shared/data`).
"""

from __future__ import annotations

import wave
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge_asd.audio import SAMPLE_RATE

FAULTS = ("impacts", "tone", "harmonic_shift", "rubbing")
DOMAINS = ("source", "target")


@dataclass(frozen=True)
class MachineProfile:
    """The parameters of one machine's sound in one domain."""

    shaft_hz: float
    harmonic_gains: tuple[float, ...]
    noise_level: float
    noise_tilt: float  # spectral slope of the noise: 0 white, 1 pink-ish, 2 brown-ish
    resonance_hz: float
    drift_depth: float = 0.01  # relative speed drift
    drift_period_s: float = 23.0
    am_depth: float = 0.1
    am_period_s: float = 7.0


def section_profile(machine_type: str, section: int, domain: str = "source") -> MachineProfile:
    """A deterministic profile for a (machine type, section, domain)."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, not {domain!r}")
    seed = zlib.crc32(f"{machine_type}/{section}".encode())
    rng = np.random.default_rng(seed)
    n_harmonics = int(rng.integers(6, 12))
    profile = MachineProfile(
        shaft_hz=float(rng.uniform(25.0, 90.0)),
        harmonic_gains=tuple(float(g) for g in rng.uniform(0.05, 1.0, n_harmonics)),
        noise_level=float(rng.uniform(0.02, 0.06)),
        noise_tilt=float(rng.uniform(0.5, 1.5)),
        resonance_hz=float(rng.uniform(800.0, 3000.0)),
        drift_period_s=float(rng.uniform(15.0, 40.0)),
        am_period_s=float(rng.uniform(5.0, 12.0)),
    )
    if domain == "target":  # another operating point: faster, louder, more noise
        profile = replace(
            profile, shaft_hz=profile.shaft_hz * 1.18, noise_level=profile.noise_level * 1.5
        )
    return profile


@dataclass(frozen=True)
class Fault:
    """A fault of `kind` (one of FAULTS) between `start_s` and `end_s` of a stream."""

    kind: str
    start_s: float
    end_s: float
    strength: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"fault kind must be one of {FAULTS}, not {self.kind!r}")
        if self.end_s <= self.start_s:
            raise ValueError("a fault must end after it starts")


class ColouredNoise:
    """Stationary coloured noise of unit variance, seamless however it is chunked.

    Shaped in the frequency domain segment by segment (2 * SEGMENT samples, sine window,
    overlap-add at half a segment: the squared windows sum to one, so the variance holds
    across seams), either with a 1/f^(tilt/2) amplitude slope above 50 Hz or as a band
    (low, high Hz). Shaping each caller's chunk on its own (as this module did) cut the
    noise at every chunk edge: a live stream rendered in 0.1 s blocks clicked ten times a
    second and its normal sound scored as anomalous (the demo's false alarm).
    """

    SEGMENT = 4096

    def __init__(
        self,
        rng: np.random.Generator,
        sample_rate: int,
        tilt: float = 0.0,
        band: tuple[float, float] | None = None,
    ) -> None:
        self._rng = rng
        size = 2 * self.SEGMENT
        freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
        if band is None:
            shape = 1.0 / np.maximum(freqs, 50.0) ** (tilt / 2.0)
        else:
            shape = ((freqs >= band[0]) & (freqs <= band[1])).astype(np.float64)
        power = (shape[0] ** 2 + 2 * np.sum(shape[1:-1] ** 2) + shape[-1] ** 2) / size
        self._shape = shape / np.sqrt(power)  # white noise of unit variance stays unit
        self._window = np.sin(np.pi * (np.arange(size) + 0.5) / size)
        self._tail = np.zeros(self.SEGMENT)
        self._ready = np.zeros(0)

    def render(self, n: int) -> np.ndarray:
        """The next `n` samples (float64)."""
        parts, have = [self._ready], len(self._ready)
        while have < n:
            segment = np.fft.irfft(np.fft.rfft(self._rng.standard_normal(2 * self.SEGMENT))
                                   * self._shape) * self._window  # fmt: skip
            parts.append(self._tail + segment[: self.SEGMENT])
            self._tail = segment[self.SEGMENT :]
            have += self.SEGMENT
        stream = np.concatenate(parts)
        self._ready = stream[n:]
        return stream[:n]


class MachineSynth:
    """A continuous stream of one machine's sound; `render(n)` returns the next n samples.

    Phase and noise are carried across calls (ColouredNoise), so consecutive chunks join
    without a seam and the same seed gives the same stream however it is chunked (the
    rubbing fault's noise aside, drawn only while the fault is on).
    """

    def __init__(
        self,
        profile: MachineProfile,
        seed: int = 0,
        faults: tuple[Fault, ...] = (),
        sample_rate: int = SAMPLE_RATE,
        gain: float = 0.25,
    ) -> None:
        self.profile = profile
        self.faults = tuple(faults)
        self.sample_rate = sample_rate
        self.gain = gain
        self._rng = np.random.default_rng(seed)
        self._phase = float(self._rng.uniform(0, 2 * np.pi))
        self._harmonic_phases = self._rng.uniform(0, 2 * np.pi, len(profile.harmonic_gains))
        self._drift_phase = float(self._rng.uniform(0, 2 * np.pi))
        self._position = 0  # samples rendered so far
        rate = sample_rate
        self._background = ColouredNoise(self._child_rng(), rate, tilt=profile.noise_tilt)
        centre = profile.resonance_hz
        self._ringing = ColouredNoise(self._child_rng(), rate, band=(0.9 * centre, 1.1 * centre))
        self._rubbing = ColouredNoise(self._child_rng(), rate, band=(4000.0, 7000.0))

    def _child_rng(self) -> np.random.Generator:
        return np.random.default_rng(int(self._rng.integers(2**63)))

    @property
    def seconds_rendered(self) -> float:
        return self._position / self.sample_rate

    def render(self, n_samples: int) -> np.ndarray:
        """The next `n_samples` of the stream, float32 in [-1, 1]."""
        p, sr = self.profile, self.sample_rate
        t = (self._position + np.arange(n_samples)) / sr
        speed = 1.0 + p.drift_depth * np.sin(2 * np.pi * t / p.drift_period_s + self._drift_phase)
        phase = self._phase + 2 * np.pi * np.cumsum(p.shaft_hz * speed) / sr
        shift = self._active(t, "harmonic_shift")
        signal = np.zeros(n_samples)
        pairs = zip(p.harmonic_gains, self._harmonic_phases, strict=True)
        for h, (gain, offset) in enumerate(pairs, start=1):
            multiplier = h * (1.0 + 0.04 * shift) if h == 3 else h
            signal += gain / h**0.5 * np.sin(multiplier * phase + offset)
        signal *= 1.0 + p.am_depth * np.sin(2 * np.pi * t / p.am_period_s)
        signal = 0.15 * signal + p.noise_level * self._background.render(n_samples)
        signal += 0.3 * p.noise_level * self._ringing.render(n_samples)
        signal += self._faults(t, phase)
        self._phase = float(phase[-1] % (2 * np.pi)) if n_samples else self._phase
        self._position += n_samples
        return np.clip(self.gain * signal, -1.0, 1.0).astype(np.float32)

    def _active(self, t: np.ndarray, kind: str) -> np.ndarray:
        """Strength of faults of `kind` at each time (0 where none is active)."""
        level = np.zeros_like(t)
        for fault in self.faults:
            if fault.kind == kind:
                level += fault.strength * ((t >= fault.start_s) & (t < fault.end_s))
        return level

    def _faults(self, t: np.ndarray, shaft_phase: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t)
        impacts = self._active(t, "impacts")
        if impacts.any():  # outer-race-like defect: 3.6 impacts per turn, ringing at 3.1 kHz
            defect_phase = (3.6 * shaft_phase / (2 * np.pi)) % 1.0
            seconds_since = defect_phase / (3.6 * self.profile.shaft_hz)
            ring = np.exp(-seconds_since * 900.0) * np.sin(2 * np.pi * 3100.0 * seconds_since)
            out += 0.5 * impacts * ring
        tone = self._active(t, "tone")
        if tone.any():
            out += 0.08 * tone * np.sin(2 * np.pi * 1370.0 * t)
        rubbing = self._active(t, "rubbing")
        if rubbing.any():
            envelope = 0.5 + 0.5 * np.sin(shaft_phase)
            out += 0.1 * rubbing * envelope * self._rubbing.render(len(t))
        return out


def render_clip(
    machine_type: str,
    section: int,
    domain: str,
    seconds: float,
    seed: int,
    faults: tuple[Fault, ...] = (),
) -> np.ndarray:
    """One clip of a machine's sound, float32 [samples] at SAMPLE_RATE."""
    synth = MachineSynth(section_profile(machine_type, section, domain), seed=seed, faults=faults)
    return synth.render(round(seconds * SAMPLE_RATE))


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float samples [frames] or [frames, channels] as 16-bit PCM WAV."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def write_dcase_tree(
    root: str | Path,
    machine_types: tuple[str, ...] = ("fan",),
    sections: tuple[int, ...] = (0, 1, 2),
    train_per_section: int = 6,
    test_per_domain: int = 3,
    seconds: float = 10.0,
    target_train_per_section: int = 1,
) -> list[Path]:
    """Write a DCASE 2022 Task 2 layout tree of generated clips and return the paths.

    `<root>/<type>/train/section_XX_<domain>_train_normal_NNNN_speed_<pct>.wav` and
    `<root>/<type>/test/section_XX_<domain>_test_<normal|anomaly>_NNNN_...wav`; each test
    anomaly carries one fault (cycling through FAULTS) over the whole clip.
    """
    written: list[Path] = []
    for machine_type in machine_types:
        for section in sections:
            for domain in DOMAINS:
                n_train = train_per_section if domain == "source" else target_train_per_section
                plan = [("train", "normal", i, None) for i in range(n_train)]
                plan += [("test", "normal", i, None) for i in range(test_per_domain)]
                plan += [
                    ("test", "anomaly", i, FAULTS[i % len(FAULTS)]) for i in range(test_per_domain)
                ]
                for split, condition, index, kind in plan:
                    key = f"{machine_type}/{section}/{domain}/{split}/{condition}/{index}"
                    seed = zlib.crc32(key.encode())
                    faults = (Fault(kind, 0.0, seconds + 1.0),) if kind else ()
                    clip = render_clip(machine_type, section, domain, seconds, seed, faults)
                    folder = Path(root) / machine_type / split
                    folder.mkdir(parents=True, exist_ok=True)
                    speed = "100" if domain == "source" else "118"
                    name = (
                        f"section_{section:02d}_{domain}_{split}_{condition}_{index:04d}"
                        f"_speed_{speed}.wav"
                    )
                    write_wav(folder / name, clip)
                    written.append(folder / name)
    return written
