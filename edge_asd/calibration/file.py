"""The calibration file: `calibration.yaml`, plus its arrays (the memory bank) in an `.npz`.

The YAML holds every field of `Calibration` but the arrays; the arrays lie beside it in
`<stem>.npz` (named in `arrays_file`, with its sha256 in `arrays_sha256`, so a YAML and
an `.npz` from different runs are never used together). A calibration is bound to one
model by `model_sha256`; `load_calibration` refuses it for any other model.

Both files are written atomically (a temporary file in the same folder, then a rename)
and readable by their owner only (0o600). `scorer` is one name ("knn", "section", "twfr") or a
fusion such as "knn+twfr"; `scorer_params` and the named `arrays` hold what a scorer needs
beyond `bank`: twfr's mixture as `twfr_*` arrays and its choice of r and components in
`scorer_params`; for a fusion, each scorer's parameters under its name, with the
`standardiser` (mean and std of its honest normal scores) the fusion scales it by.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edge_asd.errors import ModelFileError, UserError
from edge_asd.labels import matching_indices
from edge_asd.model_file import ModelInfo, sha256_of

FORMAT_VERSION = 1
FILE_MODE = 0o600
BANK_ARRAY = "bank"
_SCORER_NAME = re.compile(r"^[a-z0-9_]+(\+[a-z0-9_]+)*$")


@dataclass(frozen=True)
class Calibration:
    """A machine's threshold, decider settings and scorer state, for one model.

    `threshold` applies to the `scorer`'s score; the decider opens an event when `k` of the
    last `n` windows (one every `hop_seconds`) score above it and closes it after `m_close`
    consecutive windows below. `bank` is float32 [entries, embedding_dim] for `knn`.
    """

    machine: str
    label: str | None
    scorer: str
    threshold: float
    k: int
    n: int
    m_close: int
    hop_seconds: float
    model_sha256: str
    method: str
    method_params: dict[str, Any]
    n_windows: int
    n_recordings: int
    audio_seconds: float
    expected_false_alarms_per_day: float
    scorer_params: dict[str, Any] = field(default_factory=dict)
    score_stats: dict[str, float] = field(default_factory=dict)
    source: str = ""
    created_at: str = field(default_factory=lambda: now_iso())
    format_version: int = FORMAT_VERSION
    bank: np.ndarray | None = field(default=None, compare=False, repr=False)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def all_arrays(self) -> dict[str, np.ndarray]:
        """The bank (when there is one) and the other named arrays, as the `.npz` holds them."""
        out = dict(self.arrays)
        if self.bank is not None:
            out[BANK_ARRAY] = self.bank
        return out


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def arrays_path(yaml_path: str | os.PathLike) -> Path:
    """Where the arrays of a calibration YAML lie: `<stem>.npz` beside it."""
    return Path(yaml_path).with_suffix(".npz")


_ARRAY_FIELDS = ("bank", "arrays")
_YAML_EXTRAS = ("arrays_file", "arrays_sha256")


def _yaml_dict(calibration: Calibration) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in fields(calibration):
        if f.name not in _ARRAY_FIELDS:
            data[f.name] = _plain(getattr(calibration, f.name))
    return data


def _plain(value: Any) -> Any:
    """Numpy scalars and tuples as plain YAML-safe Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def save_calibration(calibration: Calibration, path: str | os.PathLike) -> None:
    """Write `path` (YAML) and, when there are arrays, `<stem>.npz` beside it.

    Each is written to a temporary file in the same folder (mode 0o600) and renamed over
    its target: the `.npz` first, then the YAML that names its sha256, so a crash between
    the two leaves the old YAML, which then refuses the new `.npz` instead of using it.
    """
    path = Path(path)
    data = _yaml_dict(calibration)
    arrays = calibration.all_arrays()
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
    """Write bytes to `path` through a 0o600 temporary file in its folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_calibration(path: str | os.PathLike, model_info: ModelInfo) -> Calibration:
    """Read a calibration for the model `model_info` describes.

    Raises ModelFileError naming the file (and the model's files where they disagree) when
    it is missing, unreadable, of an unknown format, inconsistent, made for another model
    (sha256), or when its label or bank do not fit the model.
    """
    path = Path(path)
    data = _read_yaml(path)
    _check_model(path, data, model_info)
    arrays = _read_arrays(path, data)
    data = {k: v for k, v in data.items() if k not in _YAML_EXTRAS}
    known = {f.name for f in fields(Calibration)} - set(_ARRAY_FIELDS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ModelFileError(f"{path}: unknown key(s) {', '.join(unknown)}")
    bank = arrays.pop(BANK_ARRAY, None)
    try:
        calibration = Calibration(**data, bank=bank, arrays=arrays)
    except TypeError as exc:
        raise ModelFileError(f"{path}: not a valid calibration ({exc})") from None
    _check_fields(path, calibration, model_info)
    return calibration


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such calibration file (make one with edge-asd calibrate)")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelFileError(f"{path}: not a readable calibration YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: not a calibration (expected a YAML mapping)")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format_version {data.get('format_version')!r} is not supported "
            f"(this edge-asd reads {FORMAT_VERSION})"
        )
    return data


def _check_model(path: Path, data: dict[str, Any], model_info: ModelInfo) -> None:
    recorded = str(data.get("model_sha256", ""))
    if recorded != model_info.onnx_sha256:
        model_file = model_info.onnx_path or "the model"
        raise ModelFileError(
            f"{path} was calibrated for the model with sha256 {recorded[:12]}…, but "
            f"{model_file} has sha256 {model_info.onnx_sha256[:12]}…: the two files do not "
            "belong together; calibrate again with this model (edge-asd calibrate)"
        )


def _read_arrays(path: Path, data: dict[str, Any]) -> dict[str, np.ndarray]:
    name = data.get("arrays_file")
    if not name:
        return {}
    npz_path = path.parent / str(name)
    if not npz_path.is_file():
        raise ModelFileError(f"{path}: its arrays file {npz_path} is missing")
    if sha256_of(npz_path) != data.get("arrays_sha256"):
        raise ModelFileError(
            f"{npz_path} does not belong to {path} (its sha256 is not the one recorded): "
            "the two come from different calibrations; calibrate again"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{npz_path}: not a readable .npz ({exc})") from None


def _check_fields(path: Path, cal: Calibration, model_info: ModelInfo) -> None:
    problems = []
    if not _SCORER_NAME.match(str(cal.scorer)):
        problems.append(f"scorer {cal.scorer!r} is not a scorer name")
    if not isinstance(cal.threshold, (int, float)) or not math.isfinite(cal.threshold):
        problems.append(f"threshold {cal.threshold!r} is not a finite number")
    if not (isinstance(cal.k, int) and isinstance(cal.n, int) and 1 <= cal.k <= cal.n):
        problems.append(f"k={cal.k!r}, n={cal.n!r}: need whole numbers with 1 <= k <= n")
    if not (isinstance(cal.m_close, int) and cal.m_close >= 1):
        problems.append(f"m_close={cal.m_close!r}: need a whole number >= 1")
    if not (isinstance(cal.hop_seconds, (int, float)) and cal.hop_seconds > 0):
        problems.append(f"hop_seconds={cal.hop_seconds!r}: need a number > 0")
    names = str(cal.scorer).split("+")
    if "section" in names and not cal.label:
        problems.append("the section scorer needs a label")
    if "knn" in names:
        problems.extend(_bank_problems(cal.bank, model_info.embedding_dim))
    if "twfr" in names:
        problems.extend(_twfr_problems(cal.arrays, model_info.front_end.n_mels))
    if len(names) > 1:
        problems.extend(_fusion_problems(cal.scorer_params, names))
    if cal.label:
        try:
            matching_indices(model_info.labels, cal.label)
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        raise ModelFileError(f"{path}: " + "; ".join(problems))


def _bank_problems(bank: np.ndarray | None, embedding_dim: int) -> list[str]:
    if bank is None:
        return ["the knn scorer needs a memory bank, and the .npz holds none"]
    if bank.ndim != 2 or bank.shape[0] < 1 or bank.shape[1] != embedding_dim:
        return [f"bank shape {bank.shape} is not [entries, {embedding_dim}]"]
    if not np.isfinite(bank).all():
        return ["the bank holds NaN or infinite values"]
    return []


TWFR_ARRAYS = ("r", "feature_mean", "feature_std", "weights", "means", "precision_chols")


def _twfr_problems(arrays: Mapping[str, np.ndarray], n_mels: int) -> list[str]:
    """What is wrong with the twfr mixture's arrays (`twfr_*`), for a model of `n_mels`."""
    missing = [f"twfr_{name}" for name in TWFR_ARRAYS if f"twfr_{name}" not in arrays]
    if missing:
        return [f"the twfr scorer needs the arrays {', '.join(missing)}, and the .npz lacks them"]
    a = {name: np.asarray(arrays[f"twfr_{name}"]) for name in TWFR_ARRAYS}
    k = a["weights"].shape[0] if a["weights"].ndim == 1 else -1
    expected = {
        "r": (),
        "feature_mean": (n_mels,),
        "feature_std": (n_mels,),
        "weights": (k,),
        "means": (k, n_mels),
        "precision_chols": (k, n_mels, n_mels),
    }
    wrong = [
        f"twfr_{n} shape {a[n].shape} is not {expected[n]}"
        for n in TWFR_ARRAYS
        if a[n].shape != expected[n]
    ]
    if wrong or k < 1:
        return wrong or ["twfr_weights is empty"]
    if not all(np.isfinite(x).all() for x in a.values()):
        return ["the twfr arrays hold NaN or infinite values"]
    if not (a["feature_std"] > 0).all() or not (a["weights"] > 0).all():
        return ["twfr_feature_std and twfr_weights must be positive"]
    return []


def _fusion_problems(params: Mapping[str, Any], names: list[str]) -> list[str]:
    """A fusion needs each scorer's standardiser (finite mean, std > 0) and a combiner."""
    problems = []
    if params.get("combiner", "mean") not in ("mean", "max"):
        problems.append(f"scorer_params.combiner {params.get('combiner')!r} is not mean or max")
    for name in names:
        given = params.get(name)
        standardiser = given.get("standardiser") if isinstance(given, Mapping) else None
        try:
            mean, std = float(standardiser["mean"]), float(standardiser["std"])
            good = math.isfinite(mean) and math.isfinite(std) and std > 0
        except (KeyError, TypeError, ValueError):
            good = False
        if not good:
            problems.append(f"scorer_params.{name}.standardiser needs a finite mean and a std > 0")
    return problems
