"""An event's picture: the log-mel spectrogram of its audio above its score trace.

Drawn with Pillow, not matplotlib: the daemon keeps running for months and matplotlib
costs tens of MB of resident memory (benchmarks/bench_evidence.py measures both). The
spectrogram is the runtime's own log-mel front end (edge_asd.melspec, the model's input:
128 HTK mel bands, 1024-point FFT, hop 512), 70 dB of range below its loudest cell, low
frequencies at the bottom, viridis colours; segments (the opening audio, the peak window)
are drawn side by side with their names. The trace plots each window's score (blue)
against the threshold (red) over time since the event started, the event's span shaded.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from edge_asd.audio import SAMPLE_RATE
from edge_asd.daemon.recent import ScorePoint
from edge_asd.melspec import reference_logmel

WIDTH = 960
TITLE_HEIGHT = 22
SPECTROGRAM_HEIGHT = 256
GAP_HEIGHT = 16
TRACE_HEIGHT = 180
AXIS_HEIGHT = 20
LEFT = 64  # room for the score axis' labels
RIGHT = 8
HEIGHT = TITLE_HEIGHT + SPECTROGRAM_HEIGHT + GAP_HEIGHT + TRACE_HEIGHT + AXIS_HEIGHT
SIZE = (WIDTH, HEIGHT)
DYNAMIC_RANGE_DB = 70.0
PNG_COMPRESS_LEVEL = 1  # zlib level: 6 (the default) takes ~65 ms on a spectrogram, 1 ~10 ms
# viridis at 0, 1/4, 1/2, 3/4, 1 (matplotlib's), interpolated linearly between
VIRIDIS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
SCORE_COLOUR = (31, 119, 180)
THRESHOLD_COLOUR = (214, 39, 40)
SPAN_COLOUR = (255, 228, 225)


def render_event(
    segments: Sequence[tuple[str, np.ndarray]],
    trace: Sequence[ScorePoint],
    *,
    title: str,
    started_at: float,
    ended_at: float | None = None,
) -> bytes:
    """PNG bytes (SIZE pixels, RGB) of an event: its audio's spectrogram, its score trace.

    segments: (name, mono float waveform at 16 kHz) drawn left to right, widths in
    proportion to their lengths; trace: the windows' scores and thresholds (Unix s), the
    span from `started_at` to `ended_at` (the last point when None) shaded.
    """
    image = Image.new("RGB", SIZE, BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((LEFT, 5), title, fill=INK)
    _draw_spectrogram(image, draw, segments, top=TITLE_HEIGHT)
    _draw_trace(
        draw, trace, started_at, ended_at, top=TITLE_HEIGHT + SPECTROGRAM_HEIGHT + GAP_HEIGHT
    )
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return out.getvalue()


def colour_map(values: np.ndarray) -> np.ndarray:
    """uint8 RGB [..., 3] of `values` in [0, 1] (viridis)."""
    anchors = np.linspace(0.0, 1.0, len(VIRIDIS))
    v = np.clip(values, 0.0, 1.0)
    channels = [np.interp(v, anchors, VIRIDIS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def _draw_spectrogram(image: Image.Image, draw: ImageDraw.ImageDraw, segments, top: int) -> None:
    logmels = [reference_logmel(np.asarray(audio, dtype=np.float64)) for _, audio in segments]
    if not logmels:
        return
    loudest = max(float(m.max()) for m in logmels)
    frames = [m.shape[1] for m in logmels]
    left, width = LEFT, WIDTH - LEFT - RIGHT
    for (name, audio), logmel, count in zip(segments, logmels, frames, strict=True):
        part = max(1, round(width * count / sum(frames)))
        shade = (logmel - (loudest - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB
        cells = Image.fromarray(colour_map(shade[::-1]), mode="RGB")  # low bands at the bottom
        image.paste(
            cells.resize((part, SPECTROGRAM_HEIGHT), Image.Resampling.BILINEAR), (left, top)
        )
        seconds = len(audio) / SAMPLE_RATE
        draw.text((left + 4, top + 4), f"{name} ({seconds:.0f} s)", fill=(255, 255, 255))
        draw.line([(left, top), (left, top + SPECTROGRAM_HEIGHT - 1)], fill=BACKGROUND)
        left += part
    draw.text((4, top), f"{SAMPLE_RATE // 2000} kHz", fill=INK)
    draw.text((4, top + SPECTROGRAM_HEIGHT - 12), "0 Hz", fill=INK)


def _draw_trace(
    draw: ImageDraw.ImageDraw,
    trace: Sequence[ScorePoint],
    started_at: float,
    ended_at: float | None,
    top: int,
) -> None:
    points = [p for p in trace if math.isfinite(p.score) and math.isfinite(p.threshold)]
    left, right, bottom = LEFT, WIDTH - RIGHT, top + TRACE_HEIGHT
    draw.rectangle([left, top, right, bottom], outline=INK)
    if not points:
        draw.text((left + 4, top + 4), "no scores", fill=INK)
        return
    # Times as recorded: a clock set back (NTP) makes them run backwards, and an end can
    # then come before its start; the axis spans them all and the shaded span is ordered.
    times = [p.time for p in points]
    end = ended_at if ended_at is not None else times[-1]
    span = sorted((started_at, end))
    t0 = min(*times, span[0])
    t1 = max(*times, span[1], t0 + 1.0)
    values = [p.score for p in points] + [p.threshold for p in points]
    low, high = min(values), max(values)
    pad = max((high - low) * 0.05, 1e-6)
    low, high = low - pad, high + pad

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * (right - left)

    def y(v: float) -> float:
        return bottom - (v - low) / (high - low) * (bottom - top)

    draw.rectangle([x(span[0]), top + 1, x(span[1]), bottom - 1], fill=SPAN_COLOUR)
    for colour, value in ((THRESHOLD_COLOUR, "threshold"), (SCORE_COLOUR, "score")):
        line = [(x(p.time), y(getattr(p, value))) for p in points]
        if len(line) == 1:
            line = line * 2
        draw.line(line, fill=colour, width=2)
    draw.text((4, top), f"{high:.4g}", fill=INK)
    draw.text((4, bottom - 12), f"{low:.4g}", fill=INK)
    draw.text((left, bottom + 4), f"{t0 - started_at:+.0f} s", fill=INK)
    draw.text((right - 60, bottom + 4), f"{t1 - started_at:+.0f} s", fill=INK)
    draw.text((left + 80, bottom + 4), "score", fill=SCORE_COLOUR)
    draw.text((left + 130, bottom + 4), "threshold", fill=THRESHOLD_COLOUR)
