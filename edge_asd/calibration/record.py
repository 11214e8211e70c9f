"""Normal sound captured live for a calibration (`edge-asd calibrate --record SECONDS`).

A bounded capture from one input device (edge_asd.capture.DeviceSource), drained from its
ring while it runs. A stream that dies and is reopened leaves a gap; each continuous
stretch becomes a recording of its own, so no window spans the gap. The audio is checked
like a file (silent, partly silent, clipped) before any window is scored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from edge_asd.audio import SAMPLE_RATE
from edge_asd.calibration.heard import HeardAs
from edge_asd.calibration.inputs import level_problem
from edge_asd.errors import EXIT_RUNTIME, AudioFileError, UserError

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
MAX_RING_SECONDS = 600.0  # a real device delivers in real time: 10 min of slack is plenty
STALL_MARGIN_SECONDS = 60.0  # longer than asked by this much and the capture is given up


def record(
    seconds: float,
    device: int | str | None,
    channel: int | None,
    window_samples: int,
    on_frames: Callable[[int], None] | None = None,
) -> tuple[list[np.ndarray], HeardAs]:
    """`seconds` of one channel (default 0) of an input device: mono float32 stretches,
    and how they were heard (device, channel, the rate it was opened at).

    `on_frames(n)` is called as frames arrive (for a progress bar). Stretches shorter than
    a window are dropped with a warning. Raises AudioDeviceError (a UserError) when the
    device cannot be found or opened, AudioFileError when the sound is silent or clipped,
    UserError when the capture stalls or nothing usable was captured.
    """
    from edge_asd.capture.device import DeviceSource

    column = 0 if channel is None else channel
    source = DeviceSource(
        device,
        channels=column + 1,
        stop_after_seconds=seconds,
        capacity_seconds=min(seconds, MAX_RING_SECONDS) + 5.0,
    )
    drain = _Drain(column, on_frames)
    deadline = time.monotonic() + seconds + STALL_MARGIN_SECONDS
    with source:
        while True:
            finished = source.health().finished  # read before draining: nothing comes after
            drain.take(source.ring)
            if finished:
                break
            if time.monotonic() > deadline:
                raise UserError(
                    f"{source.device.name}: {drain.frames / SAMPLE_RATE:.0f} s of the asked "
                    f"{seconds:g} s arrived; the device stalled",
                    EXIT_RUNTIME,
                )
            time.sleep(POLL_SECONDS)
    if source.overflows():
        log.warning(
            "%s: %d input overflow(s) while recording", source.device.name, source.overflows()
        )
    heard = HeardAs(
        column,
        (source.channels,),
        (source.opened_rate or SAMPLE_RATE,),
        SAMPLE_RATE,
        device=source.device.name,
    )
    return _usable(drain.stretches, source.device.name, window_samples), heard


class _Drain:
    """Copies new frames of one ring column out, starting a new stretch after each gap."""

    def __init__(self, column: int, on_frames: Callable[[int], None] | None) -> None:
        self.column = column
        self.on_frames = on_frames
        self.stretches: list[list[np.ndarray]] = [[]]
        self.next_frame = 0
        self.frames = 0

    def take(self, ring) -> None:
        from edge_asd.capture.ringbuffer import FramesUnavailable

        if ring.continuous_from > self.next_frame:  # the stream was reopened
            self.stretches.append([])
            self.next_frame = ring.continuous_from
        total = ring.total_frames
        if total <= self.next_frame:
            return
        try:
            block = ring.read(total, total - self.next_frame, channel=self.column)
        except FramesUnavailable as exc:
            raise UserError(f"the capture fell behind ({exc})", EXIT_RUNTIME) from None
        self.stretches[-1].append(block)
        self.frames += len(block)
        self.next_frame = total
        if self.on_frames is not None:
            self.on_frames(len(block))


def _usable(stretches: list[list[np.ndarray]], name: str, window_samples: int) -> list[np.ndarray]:
    out = []
    for parts in stretches:
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        if len(samples) < window_samples:
            if len(samples):
                log.warning(
                    "%s: a stretch of %.1f s between reopens is shorter than a window; left out",
                    name,
                    len(samples) / SAMPLE_RATE,
                )
            continue
        problem = level_problem(name, samples)
        if problem:
            raise AudioFileError(f"recorded sound from {problem}")
        out.append(np.ascontiguousarray(samples, dtype=np.float32))
    if not out:
        raise UserError(f"{name}: no stretch of at least one window was recorded")
    return out
