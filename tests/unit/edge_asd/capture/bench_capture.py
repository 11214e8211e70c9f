"""Capture benchmark: prints costs, asserts nothing.

Run: `.venv/bin/python -m tests.unit.edge_asd.capture.bench_capture`

- ring write: what the audio callback costs per block (int16 scaled in, 2 channels);
- window read: one 10 s channel out of a 2-channel ring (the windower, per machine);
- FAST windowing: windows per second from a 4-channel file (read, cut, batch);
- REALTIME hand-over delay: from a window's last frame written to the batch returned.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from edge_asd.audio import SAMPLE_RATE, WINDOW_SAMPLES
from edge_asd.capture import FAST, FileSource, Machine, RingBuffer, SyntheticSource, Windower
from edge_asd.synth import MachineSynth, section_profile, write_wav


def per_call_us(func, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        func()
    return (time.perf_counter() - started) / repeats * 1e6


def bench_ring() -> None:
    ring = RingBuffer(20 * SAMPLE_RATE, channels=2)
    for block_frames in (383, 1024, 4096):
        block = np.zeros((block_frames, 2), dtype=np.int16)
        us = per_call_us(lambda b=block: ring.write(b, 1 / 32768), 20000)
        print(f"ring write, {block_frames:>4} frames x 2 ch int16: {us:7.1f} us per block")
    out = np.empty(WINDOW_SAMPLES, dtype=np.float32)
    end = ring.total_frames
    us = per_call_us(lambda: ring.read(end, WINDOW_SAMPLES, 1, out=out), 300)
    print(f"window read, 160000 frames of 1 channel: {us / 1000:7.2f} ms")


def bench_fast(tmp: Path) -> None:
    path = tmp / "four.wav"
    synths = [MachineSynth(section_profile("fan", i), seed=i) for i in range(4)]
    write_wav(path, np.stack([s.render(120 * SAMPLE_RATE) for s in synths], 1))
    machines = [Machine(f"m{i}", "f", i) for i in range(4)]
    with FileSource(path, pacing=FAST) as source:
        windower = Windower({"f": source}, machines, hop_seconds=1.0)
        started = time.perf_counter()
        n = sum(len(batch) for batch in windower)
        seconds = time.perf_counter() - started
    print(f"FAST windowing, 120 s 4-channel file: {n} windows, {n / seconds:7.0f} windows/s")


def bench_realtime() -> None:
    source = SyntheticSource([MachineSynth(section_profile("fan", 0))], block_seconds=0.02)
    windower = Windower({"s": source}, [Machine("m", "s", 0)], SAMPLE_RATE, hop_seconds=0.25)
    delays_ms = []
    cpu_started, wall_started = time.process_time(), time.monotonic()
    with source:
        for batch in windower:
            written_at = source.ring.frame_time(int(batch.end_frames[0]))
            delays_ms.append((time.time() - written_at) * 1000)
            if len(delays_ms) == 20:
                break
    cpu_share = (time.process_time() - cpu_started) / (time.monotonic() - wall_started)
    print(
        f"REALTIME hand-over delay (0.02 s blocks): median {np.median(delays_ms):.1f} ms, "
        f"max {max(delays_ms):.1f} ms; process CPU {cpu_share * 100:.1f} % of a core "
        "(synth rendering included)"
    )


if __name__ == "__main__":
    bench_ring()
    with tempfile.TemporaryDirectory() as tmp:
        bench_fast(Path(tmp))
    bench_realtime()
