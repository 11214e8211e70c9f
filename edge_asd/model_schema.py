"""model.yaml's schema: strict pydantic models, every field described and bounded.

`edge_asd.model_file.load_model_info` validates model.yaml with `ModelYaml`, then checks
what no single field can (`runtime_problems`): the sample rate and window this runtime
captures, and the front end's frames against the window and hop. Problems are reported
as the daemon's config problems are: `FILE:LINE: KEY.PATH: VALUE: what was expected`,
all of them in one ModelFileError (`problems_message`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from edge_asd.audio import SAMPLE_RATE, WINDOW_SAMPLES, n_frames
from edge_asd.config.checks import Problem
from edge_asd.config.load import format_problems
from edge_asd.config.yaml_lines import YamlDocument

# Windows this runtime can capture and score (the models it ships use WINDOW_SAMPLES;
# short windows keep training tests quick, long ones would outgrow the capture ring).
WINDOW_SECONDS_RANGE = (1.0, 60.0)
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# A file beside model.yaml: a bare name, so a bundle cannot point outside its folder.
FileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Strict(BaseModel):
    """Unknown keys are errors; numbers are numbers (`sample_rate: '16000'` is refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class FrontEndYaml(Strict):
    """The log-mel front end inside model.onnx."""

    n_fft: int = Field(ge=16, le=16384, description="FFT size of the log-mel, samples")
    hop_length: int = Field(ge=1, le=16384, description="hop between frames, samples")
    n_mels: int = Field(ge=1, le=512, description="mel bands: the rows of `logmel`")
    frames: int = Field(
        ge=1, description="frames per window, the columns of `logmel`: 1 + window // hop"
    )
    window: str = Field("hann", min_length=1, description="analysis window of the DFT")
    mel_scale: str = Field("htk", min_length=1, description="mel scale of the filter bank")
    power: float = Field(2.0, gt=0, le=4, description="exponent of the magnitude spectrum")
    db_floor: float = Field(1e-10, gt=0, lt=1, description="floor of the mel power before dB")


class SplitFileYaml(Strict):
    """One file of the split, beside model.onnx, and its sha256."""

    file: FileName = Field(description="file name in the model directory")
    sha256: Sha256 = Field(description="sha256 of the file's bytes, checked on load")


class SplitYaml(Strict):
    """model.onnx split for speed at export (train/split.py), checked against it there."""

    derivation: int = Field(ge=1, description="version of the derivation that made the split")
    onnx_sha256: Sha256 = Field(description="sha256 of the model.onnx it was split from")
    network: SplitFileYaml = Field(description="the network: log-mel (+ Tgram columns) in")
    columns: SplitFileYaml = Field(description="per-frame columns: power spectra, frames in")
    window: SplitFileYaml = Field(description="the DFT's analysis window (float32 .npy)")
    logmel_input: str = Field(min_length=1, description="the network's log-mel input")
    tgram_input: str | None = Field(
        None, min_length=1, description="its Tgram-columns input (None: a log-mel-only model)"
    )
    differences: dict[str, float] = Field(
        default_factory=dict,
        description="largest differences from model.onnx measured at export "
        "(units of edge_asd.engines.fast_onnx.TOLERANCES)",
    )


class ModelYaml(Strict):
    """model.yaml: what a runtime needs to use model.onnx, and what a person wants to know."""

    format_version: int = Field(description="version of this file's format")
    sample_rate: int = Field(ge=1, description="sample rate of the model's input, Hz")
    window_samples: int = Field(ge=1, description="samples in one window, the input's width")
    embedding_dim: int = Field(ge=1, le=65536, description="size of the `embedding` output")
    labels: list[Label] = Field(
        min_length=1, description="the classes of `logits`, in order, e.g. fan/section_00"
    )
    front_end: FrontEndYaml = Field(description="the log-mel front end")
    backbone: str = Field(min_length=1, description="the network, e.g. stgram+mobilefacenet")
    label_scheme: str = Field(min_length=1, description="how labels were made, e.g. section")
    onnx_sha256: Sha256 = Field(description="sha256 of model.onnx (calibrations bind to it)")
    trained_on: dict[str, Any] = Field(default_factory=dict, description="what it learnt from")
    created_at: str = Field("", description="when it was exported, ISO 8601")
    split: SplitYaml | None = Field(None, description="the split for speed, when made")

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        blank = [label for label in labels if not label.strip()]
        if blank:
            raise ValueError("labels must not be blank")
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"labels must be unique; repeated: {', '.join(repeated)}")
        return labels


def runtime_problems(model: ModelYaml) -> list[Problem]:
    """What this runtime cannot run although each field is valid on its own."""
    problems = []
    if model.sample_rate != SAMPLE_RATE:
        problems.append(
            Problem(
                ("sample_rate",),
                f"expected {SAMPLE_RATE}: edge-asd captures and resamples all audio to "
                f"{SAMPLE_RATE} Hz, so a model for another rate would hear it wrong",
                model.sample_rate,
            )
        )
    low, high = (round(s * SAMPLE_RATE) for s in WINDOW_SECONDS_RANGE)
    if not low <= model.window_samples <= high:
        problems.append(
            Problem(
                ("window_samples",),
                f"expected {low} to {high} ({WINDOW_SECONDS_RANGE[0]:g}-"
                f"{WINDOW_SECONDS_RANGE[1]:g} s at {SAMPLE_RATE} Hz; edge-asd models use "
                f"{WINDOW_SAMPLES}): the capture ring and the windower hold whole windows",
                model.window_samples,
            )
        )
    fe = model.front_end
    expected_frames = n_frames(model.window_samples, fe.hop_length)
    if fe.frames != expected_frames and not problems:  # one mistake, one message
        problems.append(
            Problem(
                ("front_end", "frames"),
                f"expected {expected_frames} (1 + window_samples {model.window_samples} // "
                f"hop_length {fe.hop_length})",
                fe.frames,
            )
        )
    return problems


def validation_problems(exc: ValidationError) -> list[Problem]:
    """pydantic's errors as Problems: the key path, the value and what was expected."""
    problems = []
    for error in exc.errors():
        path, kind, value = tuple(error["loc"]), error["type"], error.get("input")
        if kind == "extra_forbidden":
            problems.append(Problem(path, "unknown key", show_value=False))
            continue
        if kind == "missing":
            problems.append(Problem(path, "missing: required", show_value=False))
            continue
        message = error["msg"].removeprefix("Value error, ")
        message = message.replace("Input should be", "expected")
        problems.append(Problem(path, message, value))
    return problems


def problems_message(path: Path, document: YamlDocument, problems: list[Problem]) -> str:
    """Every problem, one line each: `FILE:LINE: KEY.PATH: VALUE: what was expected`."""
    text = format_problems(path, document, problems)
    return text.replace("problems in the config:", f"problems in {path}:", 1)
