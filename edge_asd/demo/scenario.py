"""The demo's scenario: one generated machine, a schedule of faults, and how to judge alerts."""

from __future__ import annotations

from dataclasses import dataclass

from edge_asd.audio import SAMPLE_RATE, WINDOW_SAMPLES
from edge_asd.synth import Fault

WINDOW_SECONDS = WINDOW_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class Scenario:
    """A live stream of `machine_type`/section `section`, with `faults`, `duration_s` long."""

    machine_type: str
    section: int
    faults: tuple[Fault, ...]
    duration_s: float
    realtime: bool
    seed: int = 4242
    hop_seconds: float = 1.0

    def fault_for(self, stream_s: float) -> Fault | None:
        """The fault a window ending at `stream_s` overlaps (its 10 s reach back), or None."""
        for fault in self.faults:
            if stream_s > fault.start_s and stream_s - WINDOW_SECONDS < fault.end_s:
                return fault
        return None


# Faults 40 s apart: a window reaches 10 s back, and an event closes a few windows after
# the fault has left the window, so every fault is followed by a stretch of clean windows.
DEFAULT = Scenario(
    machine_type="fan",
    section=0,
    faults=(
        Fault("impacts", 30.0, 45.0, 2.0),
        Fault("tone", 75.0, 90.0, 2.0),
        Fault("rubbing", 120.0, 135.0, 2.0),
    ),
    duration_s=165.0,
    realtime=True,
)

# For tests and impatient people: as fast as scoring goes, two faults.
SHORT = Scenario(
    machine_type="fan",
    section=0,
    faults=(Fault("tone", 25.0, 37.0, 3.0), Fault("impacts", 62.0, 74.0, 3.0)),
    duration_s=100.0,
    realtime=False,
)
