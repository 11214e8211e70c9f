"""The calibration file: `calibration.yaml`, plus its arrays in an `.npz` beside it.

The YAML (format 2, schema `edge_asd.calibration.schema.CalibrationYaml`) holds the
machine, the model it is bound to (`model_sha256`; `load_calibration` refuses it for any
other model), the detector (its scorers' parameters and standardisers, how they are
combined), the threshold and the decider's k-of-n, how the threshold was chosen, the
input level it was made at, the choice among candidates and the detectability table. The
arrays (a knn bank, a mixture) lie in `<stem>.npz`, named in `arrays_file` with its sha256
in `arrays_sha256`, so a YAML and an `.npz` from different runs are never used together.

Both are written atomically (a temporary file in the same folder, then a rename),
readable by their owner only (0o600): the `.npz` first, then the YAML naming its sha256,
so a crash between the two leaves the old YAML, which then refuses the new `.npz`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edge_asd import files
from edge_asd.calibration.heard import HeardAs
from edge_asd.calibration.schema import FORMAT_VERSION, CalibrationYaml
from edge_asd.errors import ModelFileError, UserError
from edge_asd.files import FILE_MODE
from edge_asd.model_file import ModelInfo, sha256_of
from edge_asd.scoring.detector import Detector
from edge_asd.scoring.registry import FitContext


@dataclass(frozen=True)
class Calibration:
    """A machine's detector, threshold and decider settings, for one model.

    `threshold` applies to the detector's score (z units, edge_asd.scoring.detector); the
    decider opens an event when `k` of the last `n` windows (one every `hop_seconds`)
    score above it and closes it after `m_close` consecutive windows below.
    """

    machine: str
    label: str | None
    model_sha256: str
    detector: Detector
    threshold: float
    k: int
    n: int
    m_close: int
    hop_seconds: float
    method: str
    method_params: dict[str, Any]
    expected_false_alarms_per_day: float
    n_windows: int
    n_recordings: int
    audio_seconds: float
    score_stats: dict[str, float] = field(default_factory=dict)
    level: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] | None = None  # edge_asd.calibration.heard.HeardAs.to_dict
    selection: dict[str, Any] = field(default_factory=dict)
    detectability: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    created_at: str = field(default_factory=lambda: now_iso())

    @property
    def scorer(self) -> str:
        """The detector's kinds joined by '+', e.g. `twfr` or `knn+twfr`."""
        return self.detector.kind

    @property
    def heard(self) -> HeardAs | None:
        """How its audio was taken (channel, rates); None for a calibration made before."""
        return None if self.input is None else HeardAs.from_dict(self.input)

    @property
    def level_db(self) -> float | None:
        """The median input level of the calibration windows (dB), when recorded."""
        value = self.level.get("level_db")
        return None if value is None else float(value)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def arrays_path(yaml_path: str | os.PathLike) -> Path:
    """Where the arrays of a calibration YAML lie: `<stem>.npz` beside it."""
    return Path(yaml_path).with_suffix(".npz")


def _plain(value: Any) -> Any:
    """Numpy scalars, arrays and tuples as plain YAML-safe Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def to_yaml_dict(calibration: Calibration) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(the YAML mapping without the arrays file fields, the arrays)."""
    detector, arrays = calibration.detector.to_state()
    data = {"format_version": FORMAT_VERSION}
    for name in CalibrationYaml.model_fields:
        if name in ("format_version", "arrays_file", "arrays_sha256"):
            continue
        data[name] = _plain(detector if name == "detector" else getattr(calibration, name))
    return data, arrays


def save_calibration(calibration: Calibration, path: str | os.PathLike) -> None:
    """Write `path` (YAML) and, when there are arrays, `<stem>.npz` beside it (see module)."""
    path = Path(path)
    data, arrays = to_yaml_dict(calibration)
    if arrays:
        buffer = io.BytesIO()
        np.savez(buffer, **{name: np.asarray(a) for name, a in arrays.items()})
        npz_path = arrays_path(path)
        write_atomic(npz_path, buffer.getvalue())
        data["arrays_file"] = npz_path.name
        data["arrays_sha256"] = sha256_of(npz_path)
    text = "# edge-asd calibration: written by `edge-asd calibrate`\n"
    text += yaml.safe_dump(data, sort_keys=False)
    write_atomic(path, text.encode())


def write_atomic(path: Path, payload: bytes) -> None:
    """Write bytes to `path` (mode 0o600, durable; edge_asd.files.write_atomic), making
    its folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, payload, mode=FILE_MODE)


def load_calibration(path: str | os.PathLike, model_info: ModelInfo) -> Calibration:
    """Read a calibration for the model `model_info` describes.

    Raises ModelFileError naming the file (its line and key for a wrong value) when it is
    missing, unreadable, of another format, made for another model (sha256), inconsistent
    with its `.npz`, or when its detector does not fit the model.
    """
    from edge_asd.calibration.schema import read_calibration_yaml

    path = Path(path)
    parsed = read_calibration_yaml(path)
    _check_model(path, parsed.model_sha256, model_info)
    arrays = _read_arrays(path, parsed.arrays_file, parsed.arrays_sha256)
    context = FitContext.of_model(model_info, parsed.label)
    try:
        detector = Detector.from_state(parsed.detector.model_dump(), arrays, context, str(path))
    except UserError as exc:
        raise ModelFileError(str(exc)) from None
    fields = parsed.model_dump(exclude={"format_version", "arrays_file", "arrays_sha256"})
    fields["detector"] = detector
    return Calibration(**fields)


def _check_model(path: Path, recorded: str, model_info: ModelInfo) -> None:
    if recorded != model_info.onnx_sha256:
        model_file = model_info.onnx_path or "the model"
        raise ModelFileError(
            f"{path} was calibrated for the model with sha256 {recorded[:12]}…, but "
            f"{model_file} has sha256 {model_info.onnx_sha256[:12]}…: the two files do not "
            "belong together; calibrate again with this model (edge-asd calibrate)"
        )


def _read_arrays(path: Path, name: str | None, sha256: str | None) -> dict[str, np.ndarray]:
    if not name:
        return {}
    npz_path = path.parent / name
    if not npz_path.is_file():
        raise ModelFileError(f"{path}: its arrays file {npz_path} is missing")
    if sha256_of(npz_path) != sha256:
        raise ModelFileError(
            f"{npz_path} does not belong to {path} (its sha256 is not the one recorded): "
            "the two come from different calibrations; calibrate again"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{npz_path}: not a readable .npz ({exc})") from None
