"""What event evidence costs the daemon: ms per start and per end, and resident memory.

    python benchmarks/bench_evidence.py [--events 20]

Times EvidenceStore's own calls as the scoring loop makes them (a start writes start.flac
and event.png from a machine's Recent; an end writes peak.flac and redraws event.png),
on generated fan sound with a 3-of-5 decider at a 1 s hop (14 s opening audio), in a
temporary folder. Then, each in a fresh interpreter that has imported numpy, the resident
memory (VmRSS) that importing the picture's library adds: Pillow (what render uses) and
matplotlib (what it avoids). And what Recent.add costs the scoring loop per window, for
3 of 5 at 1 s and for the largest opening the config allows (n 600 at a 10 s hop, capped
at MAX_OPENING_SECONDS). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_asd.audio import SAMPLE_RATE
from edge_asd.daemon.recent import Recent, ScorePoint
from edge_asd.decider import Decider
from edge_asd.evidence.store import EvidenceStore
from edge_asd.synth import render_clip

WINDOW_SAMPLES = 10 * SAMPLE_RATE
HOP_SAMPLES = SAMPLE_RATE
RSS_PROBE = """
import numpy, sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1])
before = rss()
exec(sys.argv[1])
print(rss() - before)
"""
IMPORTS = {
    "Pillow (PIL.Image, PIL.ImageDraw, PNG save)": (
        "from PIL import Image, ImageDraw; import io; "
        "Image.new('RGB', (960, 494)).save(io.BytesIO(), format='PNG')"
    ),
    "matplotlib (Agg, pyplot, one figure saved)": (
        "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt, io; "
        "f = plt.figure(figsize=(9.6, 4.94)); f.savefig(io.BytesIO(), format='png')"
    ),
}


def time_events(events: int, folder: Path) -> tuple[list[float], list[float]]:
    """ms of each start's and each end's evidence calls for `events` events."""
    audio = render_clip("fan", 0, "source", 40.0, seed=1)
    store = EvidenceStore(
        folder,
        window_samples=WINDOW_SAMPLES,
        hop_samples=HOP_SAMPLES,
        max_age_days=30,
        max_megabytes=1024,
        min_free_megabytes=0,
    )
    starts, ends = [], []
    for index in range(events):
        decider = Decider(threshold=1.0, k=3, n=5, m_close=2)
        recent = Recent(SAMPLE_RATE, WINDOW_SAMPLES, 1.0, n=5)
        for second, score in enumerate([0.5, 2.0, 3.0, 2.5, 2.2, 0.1, 0.1]):
            now = time.time() - 1000 * (events - index) + second
            end = WINDOW_SAMPLES + second * HOP_SAMPLES
            waveform = audio[end - WINDOW_SAMPLES : end]
            events_now = decider.feed(score, now)
            point = ScorePoint(now, score, 1.0, decider.state, 0.0)
            recent.add(waveform, end, point)
            store.scored("fan-1", waveform, point)
            for event in events_now:
                started = time.perf_counter()
                store.clip_for("fan-1", event, recent)
                (starts if event.type == "start" else ends).append(
                    (time.perf_counter() - started) * 1000.0
                )
                store.published("fan-1", event, b"{}")
    return starts, ends


def time_recent_add(n: int, hop_seconds: float, windows: int = 200) -> tuple[float, float]:
    """(us per Recent.add once its tail is full, MB the tail keeps) for k-of-`n` at a hop."""
    hop_samples = round(hop_seconds * SAMPLE_RATE)
    recent = Recent(SAMPLE_RATE, WINDOW_SAMPLES, hop_seconds, n=n)
    waveform = render_clip("fan", 0, "source", 10.0, seed=1)[:WINDOW_SAMPLES]
    fill = recent.tail_samples // hop_samples + 1
    times = []
    for index in range(fill + windows):
        end = WINDOW_SAMPLES + index * hop_samples
        started = time.perf_counter()
        recent.add(waveform, end, ScorePoint(float(index), 0.5, 1.0, "normal", 0.0))
        times.append(time.perf_counter() - started)
    return statistics.median(times[fill:]) * 1e6, recent.tail_samples * 4 / 1e6


def import_rss_kib(statement: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, statement], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        starts, ends = time_events(args.events, Path(folder))
        sizes: dict[str, int] = {}
        for file in Path(folder).rglob("*.*"):
            sizes[file.name] = sizes.get(file.name, 0) + file.stat().st_size
    for name, values in (
        ("start (start.flac + event.png)", starts),
        ("end (peak.flac + event.png)", ends),
    ):
        print(
            f"{name}: median {statistics.median(values):.1f} ms, max {max(values):.1f} ms "
            f"over {len(values)} events"
        )
    each = ", ".join(f"{name} {size / args.events / 1e6:.2f}" for name, size in sizes.items())
    print(f"disk per event, MB: {sum(sizes.values()) / args.events / 1e6:.2f} ({each})")
    for n, hop in ((5, 1.0), (600, 10.0)):
        micros, megabytes = time_recent_add(n, hop)
        print(
            f"Recent.add, n {n} at a {hop:g} s hop: {micros:.0f} us per window, "
            f"tail {megabytes:.1f} MB"
        )
    for name, statement in IMPORTS.items():
        print(f"resident memory added by {name}: {import_rss_kib(statement) / 1024:.1f} MB")


if __name__ == "__main__":
    main()
