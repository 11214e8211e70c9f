"""Generated machine sound (edge_asd.synth), one machine per channel, faults on a schedule."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_asd.capture.producer import DEFAULT_BLOCK_SECONDS, DEFAULT_CAPACITY_SECONDS, BlockSource
from edge_asd.capture.source import REALTIME
from edge_asd.synth import MachineSynth


class SyntheticSource(BlockSource):
    """Channel i is `synths[i].render(...)`; faults follow each synth's schedule (stream time).

    Runs forever unless `seconds` is given; REALTIME paces it by the clock, FAST renders
    on demand. Build a synth with
    `MachineSynth(section_profile("fan", 0), seed=1, faults=(Fault("tone", 60, 90),))`.
    """

    def __init__(
        self,
        synths: Sequence[MachineSynth],
        pacing: str = REALTIME,
        seconds: float | None = None,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        capacity_seconds: float = DEFAULT_CAPACITY_SECONDS,
    ) -> None:
        if not synths:
            raise ValueError("a synthetic source needs at least one synth (channel)")
        rates = {synth.sample_rate for synth in synths}
        if len(rates) != 1:
            raise ValueError(f"all synths of a source must share one sample rate, not {rates}")
        sample_rate = rates.pop()
        super().__init__(len(synths), sample_rate, pacing, block_seconds, capacity_seconds)
        self.synths = tuple(synths)
        self.seconds = seconds
        self._frames_left = None if seconds is None else round(seconds * sample_rate)

    def _next_block(self, n_frames: int) -> np.ndarray | None:
        if self._frames_left is not None:
            n_frames = min(n_frames, self._frames_left)
            if n_frames == 0:
                return None
            self._frames_left -= n_frames
        return np.stack([synth.render(n_frames) for synth in self.synths], axis=1)

    def _end_reason(self) -> str:
        return f"generated sound ended: its {self.seconds:g} s (duration_seconds) are done"
