"""The calibration report: a PNG of the honest score histogram, the fitted gamma density and
the threshold, and the same facts as a few printed lines. For a fusion (`knn+twfr`), both
also show each scorer's normal-score spread, in its own units and standardised, beside the
fused score's: the fused spread is what the threshold sits on.

Drawn with matplotlib's Agg canvas directly (no pyplot, no display, no global state), and
written atomically like the calibration files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from edge_asd.calibration.file import write_atomic
from edge_asd.calibration.threshold import ThresholdChoice
from edge_asd.scoring.fusion import Standardiser

Components = Mapping[str, Sequence[np.ndarray]]  # a fusion's scorers' honest runs, by name


def summary_lines(
    choice: ThresholdChoice,
    scores: np.ndarray,
    scorer: str,
    n_recordings: int,
    components: Components | None = None,
    standardisers: Mapping[str, Standardiser] | None = None,
) -> list[str]:
    """What a person wants to read after calibrating, one fact a line (a fusion: one more
    line per scorer, its normal-score spread raw and standardised, and the fused spread)."""
    model = choice.alarm_model
    lines = [
        f"scorer {scorer}: {len(scores)} windows from {n_recordings} recording(s); honest "
        f"scores median {np.median(scores):.4g}, 99th percentile {np.quantile(scores, 0.99):.4g},"
        f" max {scores.max():.4g}",
        f"threshold {choice.threshold:.6g} by {choice.method.replace('_', ' ')}",
    ]
    if choice.fit is not None:
        fit = choice.fit
        verdict = "good" if fit.good else "poor"
        lines.append(
            f"gamma fit: shape {fit.shape:.4g}, loc {fit.loc:.4g}, scale {fit.scale:.4g}; "
            f"KS statistic {fit.ks_statistic:.3f} (limit {fit.ks_limit:.3f}: {verdict})"
        )
    lines.append(
        f"windows above the threshold: {np.mean(scores > choice.threshold):.2%} of the "
        f"calibration windows; model: {choice.window_exceedance:.3g} of normal windows"
    )
    lines.append(
        f"expected false alarms: {choice.expected_false_alarms_per_day:.3g} a day "
        f"({model.describe()})"
    )
    if components and standardisers:
        lines.extend(spread_lines(scores, components, standardisers))
    return lines


def spread_lines(
    fused: np.ndarray, components: Components, standardisers: Mapping[str, Standardiser]
) -> list[str]:
    """One line per fused scorer and one for the fusion: the spread of normal scores."""
    lines = []
    for name, runs in components.items():
        raw = np.concatenate([np.asarray(r, dtype=np.float64) for r in runs])
        z = standardisers[name](raw)
        lines.append(
            f"  {name}: normal scores mean {raw.mean():.4g}, std {raw.std():.4g}, "
            f"99th percentile {np.quantile(raw, 0.99):.4g} (z {np.quantile(z, 0.99):.3g})"
        )
    lines.append(
        f"  fused ({'+'.join(components)}): std {np.std(fused):.3g} in z units, "
        f"99th percentile {np.quantile(fused, 0.99):.3g}, max {np.max(fused):.3g}"
    )
    return lines


def render_report_png(
    runs: Sequence[np.ndarray],
    choice: ThresholdChoice,
    title: str,
    components: Components | None = None,
    standardisers: Mapping[str, Standardiser] | None = None,
) -> bytes:
    """The PNG bytes: left, the honest score histogram with the gamma density and the
    threshold; right, the upper tail (exceedance on a log axis), where a threshold set for
    a false-alarm rate usually lies beyond the data. For a fusion (`components` and their
    `standardisers` given), a row below: each scorer's standardised normal scores beside
    the fused ones, with the threshold."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scores = np.sort(np.concatenate([np.asarray(r, dtype=np.float64) for r in runs]))
    fusion = bool(components and standardisers)
    rows = 2 if fusion else 1
    figure = Figure(figsize=(11, 4.8 * rows), dpi=100)
    FigureCanvasAgg(figure)
    upper = max(float(scores[-1]), choice.threshold)
    lower = min(float(scores[0]), choice.threshold)
    margin = 0.05 * (upper - lower or 1.0)
    limits = (lower - margin, upper + margin)
    _draw_histogram(figure.add_subplot(rows, 2, 1), scores, choice, limits)
    _draw_tail(figure.add_subplot(rows, 2, 2), scores, choice, limits)
    if fusion:
        _draw_spread(figure.add_subplot(rows, 1, 2), scores, components, standardisers, choice)
    figure.suptitle(
        f"{title}: {choice.expected_false_alarms_per_day:.3g} false alarms a day expected "
        f"({choice.alarm_model.describe()})",
        fontsize=10,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _draw_histogram(axes, scores: np.ndarray, choice: ThresholdChoice, limits) -> None:
    bins = int(np.clip(np.sqrt(len(scores)) * 2, 10, 80))
    axes.hist(
        scores,
        bins=bins,
        range=limits,
        density=True,
        color="#9ab",
        label=f"honest normal scores ({len(scores)} windows)",
    )
    if choice.fit is not None:
        grid = np.linspace(*limits, 400)
        verdict = "used" if choice.method.startswith("gamma") else "poor fit, not used"
        axes.plot(
            grid,
            choice.fit.pdf(grid),
            color="#c50",
            label=f"gamma fit (KS {choice.fit.ks_statistic:.3f}, {verdict})",
        )
    axes.axvline(
        choice.threshold,
        color="#b00",
        linestyle="--",
        label=f"threshold {choice.threshold:.4g} ({choice.method.replace('_', ' ')})",
    )
    axes.set_xlim(*limits)
    axes.set_xlabel("anomaly score")
    axes.set_ylabel("density")
    axes.legend(loc="upper left", fontsize=8)


def _draw_tail(axes, scores: np.ndarray, choice: ThresholdChoice, limits) -> None:
    exceedance = 1.0 - np.arange(1, len(scores) + 1) / (len(scores) + 1)
    axes.step(scores, exceedance, where="post", color="#567", label="normal windows above")
    floor = min(choice.window_exceedance, exceedance[-1]) / 10
    if choice.fit is not None:
        grid = np.linspace(*limits, 400)
        axes.plot(
            grid, np.maximum(choice.fit.sf(grid), floor / 10), color="#c50", label="gamma fit"
        )
    axes.axvline(choice.threshold, color="#b00", linestyle="--", label="threshold")
    axes.axhline(
        choice.window_exceedance,
        color="#b00",
        linestyle=":",
        label=f"window exceedance {choice.window_exceedance:.2g}",
    )
    axes.set_yscale("log")
    axes.set_ylim(max(floor, 1e-12), 1.0)
    axes.set_xlim(*limits)
    axes.set_xlabel("anomaly score")
    axes.set_ylabel("fraction of windows above")
    axes.legend(loc="lower left", fontsize=8)


def _draw_spread(
    axes,
    fused: np.ndarray,
    components: Components,
    standardisers: Mapping[str, Standardiser],
    choice: ThresholdChoice,
) -> None:
    """Box plots (whiskers at the 1st and 99th percentiles) of each scorer's z-scores on
    normal windows and of the fused score, one row each, with the threshold."""
    names = list(components)
    rows = [
        standardisers[n](np.concatenate([np.asarray(r, dtype=np.float64) for r in components[n]]))
        for n in names
    ]
    rows.append(np.asarray(fused, dtype=np.float64))
    labels = [f"{n}\n(std {standardisers[n].std:.3g} raw)" for n in names]
    labels.append(f"fused {'+'.join(names)}\n(std {np.std(fused):.3g})")
    for y, values in enumerate(rows, start=1):
        _draw_box(axes, y, values, "#b70" if y == len(rows) else "#9ab")
    axes.set_yticks(range(1, len(rows) + 1))
    axes.set_yticklabels(labels, fontsize=8)
    axes.axvline(
        choice.threshold, color="#b00", linestyle="--", label=f"threshold {choice.threshold:.4g}"
    )
    axes.set_xlabel("normal-window score standardised on honest scores (z); fused: as thresholded")
    axes.set_title("normal-score spread: each scorer beside the fusion", fontsize=9)
    axes.legend(loc="lower right", fontsize=8)


def _draw_box(axes, y: float, values: np.ndarray, colour: str) -> None:
    """A horizontal box at height y: quartiles, median, whiskers at the 1st and 99th
    percentiles and the windows beyond them as dots (drawn by hand: boxplot's orientation
    argument changed between the matplotlib versions edge-asd supports)."""
    p1, q1, median, q3, p99 = np.quantile(values, [0.01, 0.25, 0.5, 0.75, 0.99])
    axes.hlines(y, p1, p99, color="#444", linewidth=1)
    axes.barh(y, q3 - q1, left=q1, height=0.5, color=colour, edgecolor="#444")
    axes.vlines([p1, p99], y - 0.15, y + 0.15, color="#444")
    axes.vlines(median, y - 0.25, y + 0.25, color="#000", linewidth=2)
    outside = values[(values < p1) | (values > p99)]
    axes.plot(outside, np.full(len(outside), y), "o", color="#444", markersize=2)


def write_report_png(
    path: str | os.PathLike,
    runs: Sequence[np.ndarray],
    choice: ThresholdChoice,
    title: str,
    components: Components | None = None,
    standardisers: Mapping[str, Standardiser] | None = None,
) -> None:
    """`render_report_png` written atomically to `path`."""
    write_atomic(Path(path), render_report_png(runs, choice, title, components, standardisers))
