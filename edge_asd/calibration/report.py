"""The calibration report: printed lines and a PNG a maintenance engineer can read.

Printed: the chosen detector and why (its synthetic-fault objective against the best
single candidates), the honest normal scores, the threshold and how it was chosen, the
expected false alarms, the detectability table (the smallest fault level of each kind that
raises an event, and what a gain change does) and the input level.

The PNG: the honest score histogram with the fitted gamma and the threshold; the upper
tail on a log axis (where a threshold for a false-alarm rate usually lies); the
detectability table as event probability by fault kind and level; and the synthetic-fault
AUC of each kind for the chosen detector beside the best candidates. Drawn with
matplotlib's Agg canvas directly (no pyplot, no display, no global state).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from edge_asd.calibration.detectability import GAIN_ALARM_PROBABILITY, gain_alarms, table_lines
from edge_asd.calibration.threshold import ThresholdChoice

SHOWN_CANDIDATES = 6


def summary_lines(result: Any) -> list[str]:
    """What a person wants to read after calibrating, one fact a line.

    `result` is an edge_asd.calibration.build.Result."""
    cal, choice, selection = result.calibration, result.choice, result.selection
    scores = np.concatenate(result.runs)
    names = f" {selection.combiner} ".join(c.name for c in selection.components)
    judged = selection.judgement
    lines = [
        f"detector: {names} (chosen {_how(cal.selection)}; synthetic-fault objective "
        f"{judged.objective:.3f}, AUC {judged.fault_auc:.3f})",
        f"{len(scores)} windows from {cal.n_recordings} recording(s); honest scores (z) median "
        f"{np.median(scores):.3g}, 99th percentile {np.quantile(scores, 0.99):.3g}, max "
        f"{scores.max():.3g}",
        *([f"heard as {cal.heard.describe()}"] if cal.heard is not None else []),
        f"threshold {choice.threshold:.4g} by {choice.method.replace('_', ' ')}",
    ]
    if choice.fit is not None:
        verdict = "good" if choice.fit.good else "poor"
        lines.append(
            f"gamma fit: KS statistic {choice.fit.ks_statistic:.3f} (limit "
            f"{choice.fit.ks_limit:.3f}: {verdict})"
        )
    lines.append(
        f"expected false alarms: {choice.expected_false_alarms_per_day:.3g} a day "
        f"({choice.alarm_model.describe()})"
    )
    lines += table_lines(result.rows)
    alarms = gain_alarms(result.rows)
    if alarms:
        lines.append(
            f"WARNING: a gain change of {', '.join(f'{g:+g}' for g in alarms)} dB would raise "
            f"an event (probability > {GAIN_ALARM_PROBABILITY:.0%}): keep the microphone and its "
            "gain exactly as calibrated, or calibrate over the levels the machine really has"
        )
    lines.append(f"input level: {cal.level['level_db']:.1f} dB (median of the windows)")
    return lines


def _how(selection: dict[str, Any]) -> str:
    asked = selection.get("asked", "auto")
    return "by synthetic faults" if asked == "auto" else f"as asked ({asked}), options by faults"


def render_report_png(result: Any, title: str) -> bytes:
    """The PNG bytes of the report (see the module); `result` is a build.Result."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scores = np.sort(np.concatenate(result.runs))
    choice = result.choice
    figure = Figure(figsize=(12, 9), dpi=100)
    FigureCanvasAgg(figure)
    upper = max(float(scores[-1]), choice.threshold)
    lower = min(float(scores[0]), choice.threshold)
    margin = 0.05 * (upper - lower or 1.0)
    limits = (lower - margin, upper + margin)
    _draw_histogram(figure.add_subplot(2, 2, 1), scores, choice, limits)
    _draw_tail(figure.add_subplot(2, 2, 2), scores, choice, limits)
    _draw_detectability(figure.add_subplot(2, 2, 3), result.rows)
    _draw_candidates(figure.add_subplot(2, 2, 4), result.selection)
    figure.suptitle(
        f"{title}: threshold {choice.threshold:.3g}; false alarms expected a day: "
        f"{choice.expected_false_alarms_per_day:.3g} ({choice.alarm_model.describe()})",
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
    axes.set_xlabel("detector score (z: standard deviations of normal scores)")
    axes.set_ylabel("density")
    axes.legend(loc="upper right", fontsize=7)


def _draw_tail(axes, scores: np.ndarray, choice: ThresholdChoice, limits) -> None:
    exceedance = 1.0 - np.arange(1, len(scores) + 1) / (len(scores) + 1)
    axes.step(scores, exceedance, where="post", color="#567", label="normal windows above")
    floor = min(choice.window_exceedance, exceedance[-1]) / 10
    grid = np.linspace(*limits, 400)
    if choice.fit is not None:
        used = "" if choice.method.startswith("gamma") else " (poor, not used)"
        axes.plot(
            grid,
            np.maximum(choice.fit.sf(grid), floor / 10),
            color="#c50",
            label=f"gamma fit{used}",
        )
    tail = choice.params.get("tail")
    if tail is not None:  # the generalised Pareto tail the threshold was read from
        from scipy import stats

        above = grid[grid >= tail["u"]]
        sf = tail["fraction"] * stats.genpareto.sf(
            above - tail["u"], tail["shape"], scale=tail["scale"]
        )
        axes.plot(above, np.maximum(sf, floor / 10), color="#270", label="Pareto tail fit (used)")
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
    axes.set_xlabel("detector score")
    axes.set_ylabel("fraction of normal windows above")
    axes.legend(loc="lower left", fontsize=7)


def _draw_detectability(axes, rows) -> None:
    """Event probability per fault kind (rows) and level (columns), numbers in the cells."""
    faults = [r for r in rows if r.kind != "gain"]
    gains = [r for r in rows if r.kind == "gain"]
    labels = [
        f"{r.kind}\n(from {r.detected_from_db:g} dB)"
        if r.detected_from_db is not None
        else f"{r.kind}\n(not detected)"
        for r in faults
    ]
    grid = np.array([r.event_probability for r in faults]) if faults else np.zeros((0, 0))
    if grid.size:
        axes.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            axes.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=8)
        axes.set_xticks(range(grid.shape[1]))
        axes.set_xticklabels([f"{lv:g} dB" for lv in faults[0].levels_db])
        axes.set_yticks(range(len(labels)))
        axes.set_yticklabels(labels, fontsize=8)
    gain_text = ""
    if gains:
        g = gains[0]
        gain_text = "; gain change (must not alarm): " + ", ".join(
            f"{lv:+g} dB {e:.0%}" for lv, e in zip(g.levels_db, g.event_probability, strict=True)
        )
    axes.set_title(
        f"event probability by synthetic fault level (change energy vs the machine's){gain_text}",
        fontsize=8,
        wrap=True,
    )
    axes.set_xlabel("fault level")


def _draw_candidates(axes, selection) -> None:
    """Per fault kind, the AUC of the chosen detector and of the best single candidates."""
    ranked = sorted(selection.singles.items(), key=lambda item: -item[1].objective)
    shown = [("chosen detector", selection.judgement), *ranked[:SHOWN_CANDIDATES]]
    kinds = list(selection.judgement.auc)
    width = 0.8 / len(shown)
    for i, (name, judged) in enumerate(shown):
        values = [judged.auc.get(k, np.nan) for k in kinds]
        axes.bar(
            np.arange(len(kinds)) + i * width,
            values,
            width,
            label=f"{name} ({judged.objective:.2f})",
        )
    axes.set_xticks(np.arange(len(kinds)) + 0.4 - width / 2)
    axes.set_xticklabels(kinds, fontsize=8)
    axes.set_ylim(0.4, 1.0)
    axes.axhline(0.5, color="grey", linewidth=0.5)
    axes.set_ylabel("synthetic-fault AUC (faults vs normal windows)")
    axes.set_title("candidates (objective: harmonic mean of AUC and pAUC over kinds)", fontsize=8)
    axes.legend(fontsize=6, loc="lower right")
