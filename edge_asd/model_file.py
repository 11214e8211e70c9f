"""The model file contract: `model.onnx` plus `model.yaml` beside it (and its split).

`model.onnx` takes `waveform` float32 [batch, window_samples] and returns `embedding`
[batch, embedding_dim], `logits` [batch, n_labels] (scaled cosine, no margin) and `logmel`
[batch, n_mels, frames]. `model.yaml` says what a runtime needs to use it and what a person
wants to know about it (schema: edge_asd.model_schema); `onnx_sha256` binds the two (and
binds calibrations to the model). An export also writes model.onnx split for speed
(`split:` in model.yaml, files beside it, each with its sha256; train/split.py): the
runtime runs the split when it is there; model.onnx stays the contract.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge_asd.errors import ModelFileError
from edge_asd.files import write_atomic

FORMAT_VERSION = 1
INPUT_NAME = "waveform"
OUTPUT_NAMES = ("embedding", "logits", "logmel")
MODEL_ONNX = "model.onnx"
MODEL_YAML = "model.yaml"
MODEL_FILE_MODE = 0o644  # a model is shared, not secret (what write_text gave before)
MODEL_MAPPING = (
    "a mapping of keys (format_version: ..., labels: ...) as `edge-asd-train export` writes "
    "it; export the model again"
)


@dataclass(frozen=True)
class FrontEnd:
    """Log-mel parameters of the graph's front end."""

    n_fft: int
    hop_length: int
    n_mels: int
    frames: int
    window: str = "hann"
    mel_scale: str = "htk"
    power: float = 2.0
    db_floor: float = 1e-10


@dataclass(frozen=True)
class SplitFile:
    """A file of the split, by name in the model directory, and its sha256."""

    file: str
    sha256: str


@dataclass(frozen=True)
class SplitInfo:
    """model.yaml's `split:`: the files model.onnx was split into at export, how.

    derivation: the version of train/split.py's derivation; onnx_sha256: the model.onnx
    it was split from; network, columns, window: the files; logmel_input, tgram_input:
    the network's inputs (tgram_input None for a log-mel-only model); differences:
    largest differences from model.onnx measured at export, in the units of
    edge_asd.engines.fast_onnx.TOLERANCES.
    """

    derivation: int
    onnx_sha256: str
    network: SplitFile
    columns: SplitFile
    window: SplitFile
    logmel_input: str
    tgram_input: str | None
    differences: dict[str, float] = field(default_factory=dict)

    def files(self) -> dict[str, SplitFile]:
        return {"network": self.network, "columns": self.columns, "window": self.window}


@dataclass(frozen=True)
class ModelInfo:
    """What `model.yaml` records; `onnx_path` is where the graph lies (not written)."""

    format_version: int
    sample_rate: int
    window_samples: int
    embedding_dim: int
    labels: tuple[str, ...]
    front_end: FrontEnd
    backbone: str
    label_scheme: str
    onnx_sha256: str
    trained_on: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    onnx_path: str = ""
    split: SplitInfo | None = None

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    @property
    def directory(self) -> Path:
        """The model directory (where model.onnx and the split's files lie)."""
        return Path(self.onnx_path).parent

    def to_dict(self) -> dict[str, Any]:
        """model.yaml's content: plain YAML-safe data, `split` last and only when made."""
        data = asdict(self)
        data.pop("onnx_path")
        data["labels"] = list(self.labels)
        split = data.pop("split")
        if split is not None:
            data["split"] = split
        return data


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model_paths(model: str | os.PathLike) -> tuple[Path, Path]:
    """(onnx, yaml) paths for a model directory or a path to its `.onnx` or `.yaml`."""
    path = Path(model)
    directory = path if path.is_dir() else path.parent
    onnx_path = path if path.suffix == ".onnx" else directory / MODEL_ONNX
    return onnx_path, directory / MODEL_YAML


def _model_hint(given: Path) -> str:
    """What to say about a path that holds no model: a run's model/ below it, or the rule."""
    if (given / "model" / MODEL_YAML).is_file():  # a training run's folder
        return f" (a training run keeps its model in {given / 'model'}: pass that)"
    return " (a model is a folder with model.onnx + model.yaml)"


def write_model_info(info: ModelInfo, yaml_path: str | os.PathLike) -> None:
    """Write `model.yaml` (atomically: a temporary file, then a rename)."""
    text = yaml.safe_dump(info.to_dict(), sort_keys=False)
    write_atomic(yaml_path, text.encode(), mode=MODEL_FILE_MODE)


def load_model_info(
    model: str | os.PathLike, verify_sha256: bool = True, without_split: bool = False
) -> ModelInfo:
    """Read `model.yaml` for a model directory or file and check it against the ONNX file.

    Raises ModelFileError naming the file when either is missing or unreadable, when the
    format version is unknown, when model.yaml does not follow its schema
    (edge_asd.model_schema: every problem with its line and key) or asks for what this
    runtime cannot run (another sample rate or window), or when the ONNX file's sha256 is
    not the recorded one. The split's files are checked when an engine loads them;
    `without_split` reads model.yaml as if it had no `split:` (to make the split again).
    """
    onnx_path, yaml_path = resolve_model_paths(model)
    if not Path(model).exists():
        raise ModelFileError(f"{model}: no such model directory or file")
    for required in (onnx_path, yaml_path):
        if not required.is_file():
            raise ModelFileError(f"{required}: no such file{_model_hint(Path(model))}")
    info = _parse(yaml_path, onnx_path, without_split)
    if verify_sha256:
        actual = sha256_of(onnx_path)
        if actual != info.onnx_sha256:
            raise ModelFileError(
                f"{onnx_path}: sha256 {actual[:12]}… does not match {yaml_path} "
                f"({info.onnx_sha256[:12]}…); the two files come from different exports"
            )
    return info


def _parse(yaml_path: Path, onnx_path: Path, without_split: bool = False) -> ModelInfo:
    """model.yaml validated (ModelFileError listing every problem), as a ModelInfo."""
    from pydantic import ValidationError

    from edge_asd.config.yaml_file import read_yaml_file
    from edge_asd.model_schema import (
        ModelYaml,
        problems_message,
        runtime_problems,
        validation_problems,
    )

    document = read_yaml_file(yaml_path, "model.yaml", ModelFileError, MODEL_MAPPING)
    raw = document.data
    if without_split:
        raw = {key: value for key, value in raw.items() if key != "split"}
    if raw.get("format_version") != FORMAT_VERSION:
        line = document.line_of(("format_version",)) or 1
        raise ModelFileError(
            f"{yaml_path}:{line}: format_version {raw.get('format_version')!r} is not "
            f"supported (this edge-asd reads {FORMAT_VERSION})"
        )
    try:
        checked = ModelYaml.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc)
    else:
        problems = runtime_problems(checked)
    if problems:
        raise ModelFileError(problems_message(yaml_path, document, problems))
    data = checked.model_dump()
    front_end, split = data.pop("front_end"), data.pop("split")
    data["labels"] = tuple(data["labels"])
    return ModelInfo(
        **data,
        front_end=FrontEnd(**front_end),
        onnx_path=str(onnx_path),
        split=None if split is None else _split_info(split),
    )


def _split_info(data: dict[str, Any]) -> SplitInfo:
    files = {name: SplitFile(**data.pop(name)) for name in ("network", "columns", "window")}
    return SplitInfo(**data, **files)
