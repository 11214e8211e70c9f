"""The TensorRT engine cache: which engine fits, where it lies, and how it is written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edge_asd.engines.engine_cache import (
    EngineKey,
    default_cache_dir,
    discard_engine,
    engine_path,
    find_engine,
    load_engine_bytes,
    meta_path,
    store_engine,
    timing_cache_path,
)

KEY = EngineKey(
    model_sha256="ab" * 32,
    tensorrt_version="10.3.0",
    gpu_name="Orin",
    precision="fp16",
    min_batch=1,
    max_batch=16,
)
# One changed value for every field of the key.
CHANGES = {
    "model_sha256": "cd" * 32,
    "tensorrt_version": "10.3.1",
    "gpu_name": "NVIDIA Jetson AGX Orin",
    "precision": "fp32",
    "min_batch": 2,
    "max_batch": 8,
}


def test_every_field_of_the_key_is_covered_by_a_change() -> None:
    assert set(CHANGES) == {f.name for f in dataclasses.fields(EngineKey)}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_changing_any_part_of_the_key_selects_another_engine_file(field: str) -> None:
    other = dataclasses.replace(KEY, **{field: CHANGES[field]})
    assert other.digest() != KEY.digest()
    assert engine_path(Path("/cache"), other) != engine_path(Path("/cache"), KEY)
    assert meta_path(Path("/cache"), other) != meta_path(Path("/cache"), KEY)


def test_the_same_key_built_twice_names_the_same_file() -> None:
    again = EngineKey(**KEY.to_dict())
    assert engine_path(Path("/cache"), again) == engine_path(Path("/cache"), KEY)


def test_engine_file_name_says_model_precision_and_batch_range() -> None:
    name = engine_path(Path("/cache"), KEY).name
    assert name.startswith(KEY.model_sha256[:12] + "-fp16-b1-16-")
    assert name.endswith(".engine")


@pytest.mark.parametrize(
    ("field", "value"), [("precision", "int8"), ("min_batch", 0), ("max_batch", 0)]
)
def test_impossible_keys_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        dataclasses.replace(KEY, **{field: value})


def test_stored_engine_is_loaded_back_with_its_key(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 64
    path = store_engine(tmp_path / "engines", KEY, payload, {"build_seconds": 12.5})
    assert path == engine_path(tmp_path / "engines", KEY)
    assert load_engine_bytes(tmp_path / "engines", KEY) == payload
    meta = json.loads(meta_path(tmp_path / "engines", KEY).read_text())
    assert meta["key"] == KEY.to_dict()
    assert meta["engine_bytes"] == len(payload)
    assert meta["build_seconds"] == 12.5
    assert sorted(p.name for p in (tmp_path / "engines").iterdir()) == sorted(
        [path.name, meta_path(tmp_path / "engines", KEY).name]
    ), "no temporary file is left behind"


def test_an_engine_of_another_key_is_never_loaded(tmp_path: Path) -> None:
    store_engine(tmp_path, KEY, b"engine for fp16")
    assert load_engine_bytes(tmp_path, dataclasses.replace(KEY, precision="fp32")) is None


def test_an_engine_copied_in_under_the_wrong_name_is_not_trusted(tmp_path: Path) -> None:
    other = dataclasses.replace(KEY, gpu_name="NVIDIA GeForce RTX 4090")
    store_engine(tmp_path, other, b"engine for another GPU")
    engine_path(tmp_path, other).rename(engine_path(tmp_path, KEY))
    meta_path(tmp_path, other).rename(meta_path(tmp_path, KEY))
    assert load_engine_bytes(tmp_path, KEY) is None


def test_an_engine_without_metadata_is_a_miss(tmp_path: Path) -> None:
    store_engine(tmp_path, KEY, b"engine")
    meta_path(tmp_path, KEY).write_text("{not json")
    assert load_engine_bytes(tmp_path, KEY) is None
    meta_path(tmp_path, KEY).unlink()
    assert load_engine_bytes(tmp_path, KEY) is None


def test_discarded_engine_is_gone_and_rebuilt_next_time(tmp_path: Path) -> None:
    store_engine(tmp_path, KEY, b"engine")
    discard_engine(tmp_path, KEY)
    assert load_engine_bytes(tmp_path, KEY) is None
    assert list(tmp_path.iterdir()) == []
    discard_engine(tmp_path, KEY)  # twice is harmless


def test_storing_again_replaces_the_engine(tmp_path: Path) -> None:
    store_engine(tmp_path, KEY, b"first build")
    store_engine(tmp_path, KEY, b"second build")
    assert load_engine_bytes(tmp_path, KEY) == b"second build"


def test_timing_cache_is_per_tensorrt_version_and_gpu_and_a_safe_file_name() -> None:
    a = timing_cache_path(Path("/c"), "10.3.0", "NVIDIA Jetson/Orin (nvgpu)")
    assert a.parent == Path("/c")
    assert "/" not in a.name and " " not in a.name
    assert a != timing_cache_path(Path("/c"), "10.4.0", "NVIDIA Jetson/Orin (nvgpu)")
    assert a != timing_cache_path(Path("/c"), "10.3.0", "Orin")


def test_cache_dir_comes_from_the_environment_variable_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGE_ASD_ENGINE_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert default_cache_dir() == tmp_path / "explicit"


def test_cache_dir_under_systemd_is_in_the_state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EDGE_ASD_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path / 'state'}:{tmp_path / 'other'}")
    assert default_cache_dir() == tmp_path / "state" / "engines"


def test_cache_dir_for_a_user_is_in_the_xdg_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EDGE_ASD_ENGINE_CACHE", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "edge-asd" / "engines"


def test_an_engine_for_more_machines_serves_fewer(tmp_path: Path) -> None:
    store_engine(tmp_path, KEY, b"engine for batches 1..16")
    wanted = dataclasses.replace(KEY, max_batch=3)
    found = find_engine(tmp_path, wanted)
    assert found == (KEY, b"engine for batches 1..16")


def test_the_narrowest_covering_engine_is_chosen(tmp_path: Path) -> None:
    wide = dataclasses.replace(KEY, max_batch=64)
    narrow = dataclasses.replace(KEY, max_batch=8)
    store_engine(tmp_path, wide, b"wide")
    store_engine(tmp_path, narrow, b"narrow")
    assert find_engine(tmp_path, dataclasses.replace(KEY, max_batch=4)) == (narrow, b"narrow")
    exact = dataclasses.replace(KEY, max_batch=4)
    store_engine(tmp_path, exact, b"exact")
    assert find_engine(tmp_path, exact) == (exact, b"exact")


@pytest.mark.parametrize("field", ["model_sha256", "tensorrt_version", "gpu_name", "precision"])
def test_no_engine_of_another_model_tensorrt_gpu_or_precision_is_found(
    tmp_path: Path, field: str
) -> None:
    store_engine(tmp_path, dataclasses.replace(KEY, **{field: CHANGES[field]}), b"other")
    assert find_engine(tmp_path, dataclasses.replace(KEY, max_batch=2)) is None


def test_an_engine_for_fewer_machines_does_not_serve_more(tmp_path: Path) -> None:
    store_engine(tmp_path, dataclasses.replace(KEY, max_batch=4), b"small")
    assert find_engine(tmp_path, KEY) is None
    assert find_engine(tmp_path / "missing", KEY) is None
