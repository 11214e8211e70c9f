"""What the daemon is made of, built from its config: machines (calibration, scorer,
decider) and capture sources. Every problem a user can fix is a UserError naming the file
or key, raised before any audio flows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from edge_asd.config.schema import Config, DeviceSource, FileSource, MachineConfig
from edge_asd.daemon.recent import Recent
from edge_asd.decider import Decider
from edge_asd.errors import ConfigError
from edge_asd.model_file import ModelInfo

log = logging.getLogger(__name__)


@dataclass
class MachineRuntime:
    """A machine as the loop uses it: where its audio is, how it is scored and decided."""

    name: str
    source: str
    calibration: Any  # edge_asd.calibration.file.Calibration
    decider: Decider

    @property
    def detector(self) -> Any:
        """The calibrated detector (edge_asd.scoring.detector.Detector)."""
        return self.calibration.detector

    recent: Any = None  # edge_asd.daemon.recent.Recent: its audio tail, last window, trace
    level_differs: bool = False  # the last level check found it beyond LEVEL_WARN_DB
    last_level_offset_db: float | None = None  # of the last window scored

    def level_offset_db(self, level_db: float) -> float | None:
        """A window's level minus the calibration's, dB (None: none recorded)."""
        reference = self.calibration.level_db
        return None if reference is None else float(level_db) - reference

    def level_change(self, median_offset_db: float | None) -> str | None:
        """A line to log when the median level offset crosses LEVEL_WARN_DB (out or back),
        else None (edge_asd.calibration.heard)."""
        from edge_asd.calibration.heard import level_difference

        if median_offset_db is None:
            return None
        said = level_difference(median_offset_db)
        if (said is not None) == self.level_differs:
            return None
        self.level_differs = said is not None
        if said is not None:
            return f"{self.name}: the input is {said}"
        return (
            f"{self.name}: the input level is back near calibration's ({median_offset_db:+.1f} dB)"
        )


def load_machines(config: Config, info: ModelInfo) -> list[MachineRuntime]:
    """Calibrations, scorers and deciders of every machine; UserError when one is unusable."""
    from edge_asd.calibration.file import load_calibration

    machines = []
    for index, machine in enumerate(config.machines):
        calibration = load_calibration(machine.calibration, info)
        where = f"machines[{index}] ({machine.name})"
        if machine.label is not None and machine.label != calibration.label:
            raise ConfigError(
                f"{where}.label: {machine.label!r}, but {machine.calibration} was made for "
                f"label {calibration.label!r}; calibrate again or drop the label"
            )
        if calibration.machine != machine.name:
            log.warning("%s: uses the calibration of %r", where, calibration.machine)
        if not math.isclose(calibration.hop_seconds, config.audio.hop_seconds):
            log.warning(
                "%s: calibrated with a hop of %g s, run with %g s: the expected alarm rate "
                "no longer holds",
                where,
                calibration.hop_seconds,
                config.audio.hop_seconds,
            )
        for difference in heard_differences(config, machine, calibration):
            log.warning("%s: %s", where, difference)
        decider = make_decider(machine, calibration, where)
        recent = Recent(info.sample_rate, info.window_samples, config.audio.hop_seconds, decider.n)
        machines.append(MachineRuntime(machine.name, machine.source, calibration, decider, recent))
    return machines


def heard_differences(config: Config, machine: MachineConfig, calibration: Any) -> list[str]:
    """How the machine's source differs from the way its calibration heard the machine
    (edge_asd.calibration.heard): the channel mean where the daemon hears one channel,
    another sample rate. Empty when the calibration did not record it."""
    heard = calibration.heard
    if heard is None:
        return []
    said = []
    if heard.channel is None and max(heard.channels) > 1:
        said.append(
            f"calibrated on the mean of {max(heard.channels)} channels, but the daemon "
            f"hears one (channel {machine.channel}): scores are on another scale; calibrate "
            f"with --channel {machine.channel}"
        )
    rate = source_rate(next(s for s in config.audio.sources if s.name == machine.source))
    if rate is not None and rate not in heard.sample_rates_hz:
        rates = "/".join(str(r) for r in heard.sample_rates_hz)
        said.append(
            f"its source delivers {rate} Hz, the calibration's audio was {rates} Hz: another "
            "recorder or setting, its band and noise may differ; calibrate from this source "
            "(edge-asd calibrate --record)"
        )
    return said


def source_rate(source: Any) -> int | None:
    """The sample rate a source delivers before resampling, Hz, when known before it opens."""
    if isinstance(source, DeviceSource):
        return source.device_rate  # None: 16 kHz if the device can (known once open)
    if isinstance(source, FileSource):
        from edge_asd.audio import audio_info
        from edge_asd.errors import AudioFileError

        try:
            return audio_info(source.path).sample_rate
        except AudioFileError:
            return None  # the source says so when it opens
    from edge_asd.audio import SAMPLE_RATE

    return SAMPLE_RATE


def make_decider(machine: MachineConfig, calibration: Any, where: str) -> Decider:
    """The decider with the calibration's k, n and m_close unless the config overrides them."""
    override = machine.decision
    k = override.k or calibration.k
    n = override.n or calibration.n
    m_close = override.m_close or calibration.m_close
    rms_gate = None if machine.rms_gate_dbfs is None else 10 ** (machine.rms_gate_dbfs / 20)
    try:
        return Decider(calibration.threshold, k, n, m_close, rms_gate=rms_gate)
    except ValueError as exc:
        raise ConfigError(f"{where}.decision: k={k}, n={n}, m_close={m_close}: {exc}") from None


def open_sources(config: Config) -> dict[str, Any]:
    """The capture sources of the config, by name (not started); raises UserError."""
    from edge_asd.capture import FAST, REALTIME
    from edge_asd.capture import DeviceSource as Device
    from edge_asd.capture import FileSource as File
    from edge_asd.capture import SyntheticSource as Synthetic
    from edge_asd.synth import Fault, MachineSynth, section_profile

    sources = {}
    for source in config.audio.sources:
        if isinstance(source, DeviceSource):
            sources[source.name] = Device(
                source.device,
                channels=source.channels,
                device_rate=source.device_rate,
                sample_format=source.sample_format,
                capacity_seconds=source.buffer_seconds,
                stall_seconds=source.stall_seconds,
            )
            continue
        pacing = REALTIME if source.realtime else FAST
        if isinstance(source, FileSource):
            sources[source.name] = File(source.path, pacing=pacing, loop=source.loop)
            continue
        profile = section_profile(source.machine_type, source.section, source.domain)
        faults = tuple(Fault(f.kind, f.start_s, f.end_s, f.strength) for f in source.faults)
        synths = [
            MachineSynth(profile, seed=source.seed + channel, faults=faults)
            for channel in range(source.channels)
        ]
        sources[source.name] = Synthetic(synths, pacing=pacing, seconds=source.duration_seconds)
    return sources


def open_evidence(config: Config, info: ModelInfo) -> Any:
    """The event evidence store (edge_asd.evidence.store.EvidenceStore), None when off.

    It scans its folder once here; a folder it cannot read or write is not fatal: events
    go out without clips, and `stats` says why. An OSError the store does not handle
    itself turns evidence off for this run, with one warning: the daemon starts.
    """
    if not config.evidence.enabled:
        return None
    from edge_asd.evidence.store import EvidenceStore

    evidence = config.evidence
    log.info(
        "event evidence in %s (kept %g days, at most %g MB, not below %g MB free)",
        config.evidence_path,
        evidence.max_age_days,
        evidence.max_megabytes,
        evidence.min_free_megabytes,
    )
    try:
        return EvidenceStore(
            config.evidence_path,
            window_samples=info.window_samples,
            hop_samples=round(config.audio.hop_seconds * info.sample_rate),
            sample_rate=info.sample_rate,
            max_age_days=evidence.max_age_days,
            max_megabytes=evidence.max_megabytes,
            min_free_megabytes=evidence.min_free_megabytes,
        )
    except OSError as exc:
        where = exc.filename or config.evidence_path
        log.warning("event evidence is off for this run: %s: %s", where, exc.strerror or exc)
        return None
