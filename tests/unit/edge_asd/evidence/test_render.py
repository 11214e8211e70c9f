"""The event picture: a PNG of a fixed size, its spectrogram showing the event's sound."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from edge_asd.daemon.recent import ScorePoint
from edge_asd.evidence.render import LEFT, SIZE, SPECTROGRAM_HEIGHT, TITLE_HEIGHT, render_event
from edge_asd.synth import Fault, render_clip

RATE = 16000


def trace(scores: list[float], threshold: float = 1.0) -> list[ScorePoint]:
    return [ScorePoint(100.0 + i, s, threshold, "normal", None) for i, s in enumerate(scores)]


def test_the_picture_is_a_png_of_the_documented_size():
    audio = render_clip("fan", 0, "source", 4.0, seed=1)
    png = render_event(
        [("opening audio", audio), ("peak window", audio[:RATE])],
        trace([0.5, 2.0, 3.0, 0.4]),
        title="pump-1",
        started_at=101.0,
        ended_at=103.0,
    )
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size, image.mode) == ("PNG", SIZE, "RGB")


def test_a_tone_in_the_audio_is_a_bright_line_at_its_height_in_the_spectrogram():
    tone_hz = 1370.0  # synth's `tone` fault
    audio = render_clip("fan", 0, "source", 4.0, seed=1, faults=(Fault("tone", 0.0, 4.0, 4.0),))
    png = render_event([("opening audio", audio)], trace([2.0]), title="t", started_at=100.0)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    column = pixels[TITLE_HEIGHT : TITLE_HEIGHT + SPECTROGRAM_HEIGHT, LEFT + 200]
    # HTK mel height of the tone: rows count from the top (8 kHz) down to 0 Hz
    mel = 2595 * np.log10(1 + tone_hz / 700) / (2595 * np.log10(1 + 8000 / 700))
    row = round((1 - mel) * (SPECTROGRAM_HEIGHT - 1))
    brightest = int(np.argmax(column[20:])) + 20  # below the segment's name
    assert abs(brightest - row) <= 3, (brightest, row)


def test_a_trace_without_finite_scores_still_gives_a_picture():
    audio = np.zeros(RATE, dtype=np.float32)
    png = render_event(
        [("opening audio", audio)], trace([float("nan")]), title="t", started_at=100.0
    )
    assert Image.open(io.BytesIO(png)).size == SIZE


def test_a_clock_set_back_during_an_event_still_draws_its_picture():
    # NTP set the clock back an hour mid-event: the trace runs backwards and the end is
    # stamped before the start (this stopped the daemon once).
    audio = render_clip("fan", 0, "source", 4.0, seed=1)
    points = trace([0.5, 2.0, 3.0])
    points += [ScorePoint(102.0 - 3600 + i, 2.5, 1.0, "anomaly", None) for i in range(3)]
    png = render_event(
        [("opening audio", audio)], points, title="pump-1", started_at=101.0, ended_at=-3496.0
    )
    assert Image.open(io.BytesIO(png)).size == SIZE
