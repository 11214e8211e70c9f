"""Where TensorRT engines are cached, and the key that says which engine fits.

A serialized TensorRT engine only runs with the TensorRT version and the GPU it was built
for, and it fixes the precision and the batch range. The key holds all of these with the
model's sha256, so a changed model, a JetPack upgrade or a different board never loads a
stale engine: it misses the cache and a new engine is built. `edge-asd build-engine` and
the runtime (`TensorRTEngine`) use the same key and the same directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_asd import files

SHARED_FILE_MODE = 0o644  # what the cache wrote before (0o666 less the usual umask)

PRECISIONS = ("fp16", "fp32")
CACHE_ENV = "EDGE_ASD_ENGINE_CACHE"
ENGINE_SUFFIX = ".engine"
META_SUFFIX = ".json"


@dataclass(frozen=True)
class EngineKey:
    """Everything a built engine depends on; equal keys mean an interchangeable engine."""

    model_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str
    min_batch: int = 1
    max_batch: int = 16

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 1 <= self.min_batch <= self.max_batch:
            raise ValueError(
                f"batch range must satisfy 1 <= min <= max, got {self.min_batch}..{self.max_batch}"
            )

    def digest(self) -> str:
        """A short hex digest of every field (16 hex digits)."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def file_stem(self) -> str:
        """A readable, unique file name stem: model, precision, batch range, digest."""
        return (
            f"{self.model_sha256[:12]}-{self.precision}-b{self.min_batch}-{self.max_batch}"
            f"-{self.digest()}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def covers(self, wanted: EngineKey) -> bool:
        """Whether an engine built for this key can serve `wanted`: the same model,
        TensorRT, GPU and precision, and a batch range that contains wanted's."""
        return (
            (self.model_sha256, self.tensorrt_version, self.gpu_name, self.precision)
            == (wanted.model_sha256, wanted.tensorrt_version, wanted.gpu_name, wanted.precision)
            and self.min_batch <= wanted.min_batch
            and self.max_batch >= wanted.max_batch
        )


def default_cache_dir() -> Path:
    """The engine cache directory the daemon and `edge-asd build-engine` share.

    `EDGE_ASD_ENGINE_CACHE` when set (the systemd unit sets /var/lib/edge-asd/engines);
    else `$STATE_DIRECTORY/engines` under systemd; else `$XDG_CACHE_HOME/edge-asd/engines`
    (~/.cache/edge-asd/engines).
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    state = os.environ.get("STATE_DIRECTORY")
    if state:  # systemd may pass several, colon-separated; the first is ours
        return Path(state.split(":")[0]) / "engines"
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "edge-asd" / "engines"


def engine_path(cache_dir: Path, key: EngineKey) -> Path:
    """The serialized engine's path for `key`."""
    return Path(cache_dir) / (key.file_stem() + ENGINE_SUFFIX)


def meta_path(cache_dir: Path, key: EngineKey) -> Path:
    """The JSON beside the engine: its key and how it was built."""
    return Path(cache_dir) / (key.file_stem() + META_SUFFIX)


def timing_cache_path(cache_dir: Path, tensorrt_version: str, gpu_name: str) -> Path:
    """TensorRT's timing cache: per TensorRT version and GPU, shared by all models."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "_", gpu_name).strip("_") or "gpu"
    return Path(cache_dir) / f"timing-trt{tensorrt_version}-{slug}.cache"


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that a reader sees the old one or the new one, never half of it
    (edge_asd.files.write_atomic, durable), making its folder first. Mode 0o644: engines
    and timing caches hold no secret, and another user of the device may load them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, data, mode=SHARED_FILE_MODE)


def store_engine(
    cache_dir: Path, key: EngineKey, engine: bytes, details: dict[str, Any] | None = None
) -> Path:
    """Write a serialized engine and its metadata into the cache; returns the engine path."""
    path = engine_path(cache_dir, key)
    write_atomic(path, engine)
    meta = {"key": key.to_dict(), "engine_bytes": len(engine), **(details or {})}
    write_atomic(meta_path(cache_dir, key), (json.dumps(meta, indent=2) + "\n").encode())
    return path


def load_engine_bytes(cache_dir: Path, key: EngineKey) -> bytes | None:
    """The cached engine for `key`, or None when there is none or its metadata disagrees.

    The metadata check catches a file copied in by hand under the wrong name.
    """
    path, meta = engine_path(cache_dir, key), meta_path(cache_dir, key)
    if not path.is_file() or not meta.is_file():
        return None
    try:
        recorded = json.loads(meta.read_text()).get("key")
    except (OSError, ValueError):
        return None
    if recorded != key.to_dict():
        return None
    return path.read_bytes()


def find_engine(cache_dir: Path, key: EngineKey) -> tuple[EngineKey, bytes] | None:
    """The cached engine for `key`, else the narrowest one whose batch range covers it.

    So an engine built ahead of time for up to 16 machines serves a daemon with 3; returns
    (the key it was built for, its bytes), or None when no cached engine fits.
    """
    exact = load_engine_bytes(cache_dir, key)
    if exact is not None:
        return key, exact
    candidates = []
    for meta in Path(cache_dir).glob(f"{key.model_sha256[:12]}-{key.precision}-*{META_SUFFIX}"):
        try:
            recorded = EngineKey(**json.loads(meta.read_text())["key"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if recorded.covers(key):
            candidates.append(recorded)
    for candidate in sorted(candidates, key=lambda k: k.max_batch - k.min_batch):
        data = load_engine_bytes(cache_dir, candidate)
        if data is not None:
            return candidate, data
    return None


def discard_engine(cache_dir: Path, key: EngineKey) -> None:
    """Remove a cached engine (e.g. one TensorRT refused to load)."""
    for path in (engine_path(cache_dir, key), meta_path(cache_dir, key)):
        path.unlink(missing_ok=True)
