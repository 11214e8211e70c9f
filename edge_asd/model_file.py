"""The model file contract: `model.onnx` plus `model.yaml` beside it.

`model.onnx` takes `waveform` float32 [batch, window_samples] and returns `embedding`
[batch, embedding_dim], `logits` [batch, n_labels] (scaled cosine, no margin) and `logmel`
[batch, n_mels, frames]. `model.yaml` says what a runtime needs to use it and what a person
wants to know about it; `onnx_sha256` binds the two (and binds calibrations to the model).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge_asd.errors import ModelFileError

FORMAT_VERSION = 1
INPUT_NAME = "waveform"
OUTPUT_NAMES = ("embedding", "logits", "logmel")
MODEL_ONNX = "model.onnx"
MODEL_YAML = "model.yaml"


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

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("onnx_path")
        data["labels"] = list(self.labels)
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


def write_model_info(info: ModelInfo, yaml_path: str | os.PathLike) -> None:
    """Write `model.yaml` (atomically: a temporary file, then a rename)."""
    yaml_path = Path(yaml_path)
    tmp = yaml_path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(info.to_dict(), sort_keys=False))
    os.replace(tmp, yaml_path)


def load_model_info(model: str | os.PathLike, verify_sha256: bool = True) -> ModelInfo:
    """Read `model.yaml` for a model directory or file and check it against the ONNX file.

    Raises ModelFileError naming the file when either is missing or unreadable, when the
    format version is unknown, or when the ONNX file's sha256 is not the recorded one.
    """
    onnx_path, yaml_path = resolve_model_paths(model)
    for required in (onnx_path, yaml_path):
        if not required.is_file():
            raise ModelFileError(f"{required}: no such file (a model is model.onnx + model.yaml)")
    try:
        raw = yaml.safe_load(yaml_path.read_text())
        if raw.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{yaml_path}: format_version {raw.get('format_version')!r} is not supported "
                f"(this edge-asd reads {FORMAT_VERSION})"
            )
        front_end = FrontEnd(**raw.pop("front_end"))
        raw["labels"] = tuple(raw["labels"])
        info = ModelInfo(front_end=front_end, onnx_path=str(onnx_path), **raw)
    except ModelFileError:
        raise
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{yaml_path}: not a valid model.yaml ({exc})") from None
    if verify_sha256:
        actual = sha256_of(onnx_path)
        if actual != info.onnx_sha256:
            raise ModelFileError(
                f"{onnx_path}: sha256 {actual[:12]}… does not match {yaml_path} "
                f"({info.onnx_sha256[:12]}…); the two files come from different exports"
            )
    return info
