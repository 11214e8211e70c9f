"""The daemon's config as pydantic models: strict (unknown keys are errors), bounded, described.

One YAML file holds everything `edge-asd run` needs (see configs/*.yaml for documented
examples): the device id, the model and engine, the audio sources and hop, the machines
(each on one channel of one source, with its label and calibration), maintenance, and
where results go (MQTT, the outbox, metrics, Home Assistant, evidence, the page: their
sections are in edge_asd/config/outputs.py). Every field has a description:
`edge-asd validate-config` quotes it when a required key is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from edge_asd.config.outputs import (
    EvidenceConfig,
    HomeAssistantConfig,
    MetricsConfig,
    MqttConfig,
    OutboxConfig,
    WebConfig,
)
from edge_asd.config.types import (
    ExistingFile,
    ModelPath,
    Name,
    ResolvedPath,
    Strict,
)
from edge_asd.windows import hop_samples


class EngineConfig(Strict):
    """How the model runs."""

    kind: Literal["onnxruntime", "tensorrt"] = Field(
        "onnxruntime",
        description="inference engine: 'onnxruntime' (CPU, anywhere) or 'tensorrt' (Jetson GPU)",
    )
    threads: int = Field(
        2, ge=1, le=64, description="CPU threads for onnxruntime (intra-op); ignored by TensorRT"
    )
    allow_fallback: bool = Field(
        True,
        description="when TensorRT cannot run, fall back to onnxruntime (the reason is logged "
        "and reported in stats) instead of exiting",
    )
    precision: Literal["fp16", "fp32"] = Field(
        "fp16", description="TensorRT build precision ('fp16' is about twice as fast on a Jetson)"
    )
    cache_dir: ResolvedPath | None = Field(
        None,
        description="where TensorRT engines are cached (None: $EDGE_ASD_ENGINE_CACHE, else "
        "$STATE_DIRECTORY/engines under systemd, else ~/.cache/edge-asd/engines)",
    )
    optimise: bool = Field(
        True,
        description="onnxruntime: run the model's split when its directory has one (made at "
        "export, checked against model.onnx within stated tolerances: front end once per "
        "frame, shared by overlapping windows); false: run model.onnx as it is",
    )


class FaultConfig(Strict):
    """A fault injected into a synthetic source, between two times of its stream."""

    kind: Literal["impacts", "tone", "harmonic_shift", "rubbing"] = Field(
        description="the kind of fault (see edge_asd.synth.FAULTS)"
    )
    start_s: float = Field(ge=0, description="when the fault starts, seconds into the stream")
    end_s: float = Field(gt=0, description="when it ends, seconds into the stream")
    strength: float = Field(1.0, gt=0, le=10, description="the fault's relative loudness")


class DeviceSource(Strict):
    """A live input: a PortAudio device (a USB microphone, a multi-channel interface)."""

    kind: Literal["device"] = Field(description="'device': capture a sound card")
    name: Name = Field(description="this source's name, used by machines[].source")
    device: int | str = Field(
        description="PortAudio device index, or a unique part of its name as "
        "`edge-asd devices` lists it (names survive re-plugging, indices may not)"
    )
    channels: int = Field(1, ge=1, le=64, description="input channels to open on the device")
    device_rate: int | None = Field(
        None,
        ge=8000,
        le=192000,
        description="rate to open the device at, Hz, resampled to 16 kHz (None: 16 kHz if "
        "the device can, else its own default rate)",
    )
    sample_format: Literal["int16", "float32"] = Field(
        "int16", description="what the device delivers: 'int16' (as the training data) or 'float32'"
    )
    buffer_seconds: float = Field(
        20.0, ge=11, le=600, description="ring buffer length, seconds (at least a window + hop)"
    )
    stall_seconds: float = Field(
        2.0, ge=0.5, le=60, description="no audio for this long reopens the device"
    )

    @property
    def realtime(self) -> bool:
        return True


class FileSource(Strict):
    """A recording replayed as if it were live (for tests, demos and re-checking incidents)."""

    kind: Literal["file"] = Field(description="'file': replay an audio file")
    name: Name = Field(description="this source's name, used by machines[].source")
    path: ExistingFile = Field(description="the WAV/FLAC file (relative to this config)")
    realtime: bool = Field(
        True, description="pace the replay at the real rate (false: as fast as scoring goes)"
    )
    loop: bool = Field(False, description="start again at the end instead of stopping")


class SyntheticSource(Strict):
    """Generated machine sound (edge_asd.synth) with an optional schedule of faults."""

    kind: Literal["synthetic"] = Field(description="'synthetic': generated machine sound")
    name: Name = Field(description="this source's name, used by machines[].source")
    machine_type: Name = Field("fan", description="the generated machine's type")
    section: int = Field(0, ge=0, le=99, description="the generated machine's section")
    domain: Literal["source", "target"] = Field("source", description="its operating point")
    channels: int = Field(1, ge=1, le=64, description="channels (each a differently seeded copy)")
    seed: int = Field(0, ge=0, description="random seed of the noise")
    faults: list[FaultConfig] = Field([], description="faults to inject")
    realtime: bool = Field(True, description="pace at the real rate (false: as fast as possible)")
    duration_seconds: float | None = Field(
        None, gt=0, description="stop after this many seconds (None: run forever)"
    )


Source = Annotated[DeviceSource | FileSource | SyntheticSource, Field(discriminator="kind")]


class AudioConfig(Strict):
    """Where sound comes from, and how often a window is scored."""

    hop_seconds: float = Field(
        1.0,
        ge=0.1,
        le=10.0,
        description="seconds between two scored windows (each window is the last 10 s)",
    )
    sources: list[Source] = Field(
        min_length=1, max_length=16, description="input sources (devices, files, synthetic)"
    )

    @field_validator("hop_seconds")
    @classmethod
    def _whole_samples(cls, value: float) -> float:
        hop_samples(value)  # raises ValueError with the reason
        return value


class DecisionConfig(Strict):
    """Overrides of the calibration's k-of-n confirmation."""

    k: int | None = Field(None, ge=1, le=600, description="windows above the threshold to open")
    n: int | None = Field(None, ge=1, le=600, description="out of the last n windows")
    m_close: int | None = Field(
        None, ge=1, le=600, description="consecutive windows below the threshold to close"
    )


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class QuietSlot(Strict):
    """A weekly slot of maintenance (quiet hours), in `maintenance.time_zone`."""

    days: list[Weekday] = Field(min_length=1, description="days it starts on: mon ... sun")
    start: HHMM = Field(description="local start time, HH:MM")
    end: HHMM = Field(
        description="local end time, HH:MM; not after start: it ends the next day "
        "(22:00-06:00), equal to start: 24 hours"
    )


class MachineConfig(Strict):
    """One monitored machine: a channel of a source, scored with its calibration."""

    name: Name = Field(description="the machine's name in MQTT topics")
    source: Name = Field(description="the name of the source (audio.sources[].name) it is on")
    channel: int = Field(0, ge=0, le=63, description="0-based channel of that source")
    calibration: ExistingFile = Field(
        description="calibration.yaml written by `edge-asd calibrate` for this machine and model"
    )
    label: str | None = Field(
        None,
        min_length=1,
        description="the model label it is bound to (default: the calibration's); "
        "must agree with the calibration when given",
    )
    decision: DecisionConfig = Field(
        DecisionConfig(), description="overrides of the calibration's k, n and m_close"
    )
    rms_gate_dbfs: float | None = Field(
        None,
        ge=-120,
        le=0,
        description="windows quieter than this (dBFS RMS) are 'unknown': machine off or mic dead",
    )
    quiet_hours: list[QuietSlot] = Field(
        [], max_length=64, description="this machine's weekly maintenance slots (no events)"
    )


class MaintenanceConfig(Strict):
    """Quiet hours: weekly slots in which machines are in maintenance (scored, no events)."""

    time_zone: str = Field(
        "UTC", min_length=1, description="IANA time zone of the quiet hours (Europe/Berlin)"
    )
    quiet_hours: list[QuietSlot] = Field(
        [], max_length=64, description="weekly maintenance slots of every machine"
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from None
        return value


class Config(Strict):
    """The whole daemon config."""

    device_id: Name = Field(description="this device's id, the second level of every topic")
    model: ModelPath = Field(description="model directory (model.onnx + model.yaml)")
    engine: EngineConfig = Field(EngineConfig(), description="how the model runs")
    audio: AudioConfig = Field(description="sources and hop")
    machines: list[MachineConfig] = Field(
        min_length=1, max_length=64, description="the monitored machines"
    )
    mqtt: MqttConfig = Field(description="the MQTT broker")
    outbox: OutboxConfig = Field(description="the durable event outbox")
    metrics: MetricsConfig = Field(MetricsConfig(), description="stats and Prometheus")
    home_assistant: HomeAssistantConfig = Field(
        HomeAssistantConfig(), description="Home Assistant MQTT discovery (off by default)"
    )
    maintenance: MaintenanceConfig = Field(
        MaintenanceConfig(), description="quiet hours (maintenance by schedule)"
    )
    evidence: EvidenceConfig = Field(
        EvidenceConfig(), description="each event's audio and picture (on by default)"
    )
    web: WebConfig = Field(WebConfig(), description="the local page (off by default)")

    @property
    def evidence_path(self) -> Path:
        """Where clips go: `evidence.path`, else the folder 'evidence' beside the outbox."""
        return self.evidence.path or self.outbox.path.parent / "evidence"

    def source(self, name: str) -> DeviceSource | FileSource | SyntheticSource:
        """The source called `name` (KeyError when there is none)."""
        for source in self.audio.sources:
            if source.name == name:
                return source
        raise KeyError(name)
