"""Calibrating in tests by the functions `edge-asd calibrate` runs, without its CLI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_asd.calibration.build import Result, Settings, calibrate
from edge_asd.calibration.collect import CalibrationData, collect, file_sources
from edge_asd.calibration.inputs import plan_recordings
from edge_asd.engines import open_engine
from edge_asd.windows import hop_samples


def collect_files(
    engine: Any,
    paths: Sequence[Path],
    new_condition: Sequence[Path] = (),
    hop_seconds: float = 1.0,
    n_probes: int = 8,
) -> CalibrationData:
    """What `edge-asd calibrate --input PATHS --new-condition ...` collects; few probes
    (8, against the command's 24) to keep tests quick."""
    hop = hop_samples(hop_seconds, engine.info.sample_rate)
    window = {"window_samples": engine.info.window_samples}
    sources = file_sources(plan_recordings(paths, **window), hop_samples=hop, **window)
    if new_condition:
        planned = plan_recordings(new_condition, **window)
        sources += file_sources(planned, hop_samples=hop, new_condition=True, **window)
    return collect(engine, sources, hop_samples=hop, n_probes=n_probes)


def calibrate_files(
    model: Path,
    paths: Sequence[Path],
    new_condition: Sequence[Path] = (),
    n_probes: int = 8,
    **settings: Any,
) -> Result:
    """`edge-asd calibrate` on files, as a Result; `settings` are build.Settings fields
    (machine defaults to "m1", quantile to 0.9: tests have minutes of audio, not hours)."""
    settings = {"machine": "m1", "quantile": 0.9, **settings}
    engine = open_engine(model, threads=2)
    try:
        data = collect_files(
            engine, paths, new_condition, settings.get("hop_seconds", 1.0), n_probes
        )
        return calibrate(data, Settings(**settings), engine.info)
    finally:
        engine.close()
