"""What a benchmark run of the daemon needs, generated in a folder: recordings, calibrations
and daemon configs. Nothing here is measured; `edge_asd.bench.daemon` measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edge_asd.audio import SAMPLE_RATE

TILE_SECONDS = 60.0  # generated once per channel and repeated: rendering is slower than scoring
CALIBRATION_SECONDS = 20.0  # each of two normal recordings the bench calibration is fitted on


def write_recording(path: Path, seconds: float, channels: int = 1, seed: int = 0) -> Path:
    """A WAV of generated fan sound, `channels` differently seeded channels; returns `path`.

    Each channel is a `TILE_SECONDS` clip repeated to `seconds`: the daemon's cost does not
    depend on what it hears, and rendering a long clip would take longer than scoring it.
    """
    from edge_asd.synth import render_clip, write_wav

    frames = round(seconds * SAMPLE_RATE)
    tile = min(seconds, TILE_SECONDS)
    columns = []
    for channel in range(channels):
        clip = render_clip("fan", 0, "source", tile, seed=seed + channel)
        columns.append(np.resize(clip, frames))  # np.resize repeats the clip
    write_wav(path, np.stack(columns, axis=1))
    return path


def write_calibrations(
    model: Path, folder: Path, machines: Sequence[str], threads: int = 2
) -> dict[str, Path]:
    """A calibration (the scorer chosen as `edge-asd calibrate` chooses it, gamma quantile
    0.9) per machine, fitted on generated normal sound by the functions it runs.

    All machines share one fit (written once per name, so the daemon's calibration files
    name their machine); returns {machine: calibration.yaml}.
    """
    from edge_asd.calibration.build import Settings, calibrate
    from edge_asd.calibration.collect import collect, file_sources
    from edge_asd.calibration.file import save_calibration
    from edge_asd.calibration.inputs import plan_recordings
    from edge_asd.engines import open_engine

    folder.mkdir(parents=True, exist_ok=True)
    paths = [  # two recordings: honest scores leave one out
        write_recording(folder / f"normal-{i}.wav", CALIBRATION_SECONDS, seed=1000 + i)
        for i in range(2)
    ]
    engine = open_engine(model, threads=threads)
    try:
        window = {"window_samples": engine.info.window_samples}
        sources = file_sources(plan_recordings(paths, **window), hop_samples=SAMPLE_RATE, **window)
        data = collect(engine, sources, hop_samples=SAMPLE_RATE)
        settings = Settings(machine=machines[0], quantile=0.9)
        calibration = calibrate(data, settings, engine.info).calibration
    finally:
        engine.close()
    written = {}
    for name in machines:
        written[name] = folder / f"calibration-{name}.yaml"
        save_calibration(replace(calibration, machine=name), written[name])
    return written


def write_config(
    path: Path,
    model: Path,
    source: dict[str, Any],
    calibrations: dict[str, Path],
    port: int,
    engine: dict[str, Any] | None = None,
) -> Path:
    """A daemon config: source `in`, machine i on its channel i, scores published over MQTT.

    `source` holds the source's keys but its name (e.g. {"kind": "file", "path": ...});
    `engine` the engine section. Returns `path`.
    """
    config = {
        "device_id": "bench",
        "model": str(model),
        "engine": dict(engine or {}),
        "audio": {"hop_seconds": 1.0, "sources": [{"name": "in", **source}]},
        "machines": [
            {"name": name, "source": "in", "channel": channel, "calibration": str(calibration)}
            for channel, (name, calibration) in enumerate(calibrations.items())
        ],
        "mqtt": {"host": "127.0.0.1", "port": port, "publish_scores": True},
        "outbox": {"path": str(path.parent / f"{path.stem}-outbox.sqlite")},
        "metrics": {"stats_interval_seconds": 5},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
