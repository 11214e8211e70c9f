"""Evaluation results on disk and on screen: DCASE CSVs, summary.json, a table, ROC curves.

anomaly_score_<type>_section_<XX>_test.csv    file name, score (one line per clip)
decision_result_<type>_section_<XX>_test.csv  file name, 1 (anomaly) or 0
summary.json   {"official_score", "machine_types": {TYPE: {"official_score",
               "sections": {XX: {"auc_source", "auc_target", "pauc"}}}}}  (fractions)
roc.png        ROC curve of every section (normals of both domains vs anomalies)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_asd.metrics import official_score
from train.evaluate import SectionScores


def write_dcase_csvs(sections: Sequence[SectionScores], out_dir: Path) -> None:
    for s in sections:
        stem = f"{s.machine_type}_section_{s.section}_test.csv"
        scores = "".join(f"{c.path.name},{v:.6f}\n" for c, v in zip(s.clips, s.scores, strict=True))
        decisions = "".join(
            f"{c.path.name},{int(v > s.threshold)}\n"
            for c, v in zip(s.clips, s.scores, strict=True)
        )
        (out_dir / f"anomaly_score_{stem}").write_text(scores)
        (out_dir / f"decision_result_{stem}").write_text(decisions)


def summary(sections: Sequence[SectionScores]) -> dict[str, Any]:
    """The summary.json structure (see the module docstring)."""
    types: dict[str, Any] = {}
    for machine_type in sorted({s.machine_type for s in sections}):
        own = [s for s in sections if s.machine_type == machine_type]
        types[machine_type] = {
            "official_score": official_score(s.result for s in own),
            "sections": {s.section: s.result.to_dict() for s in own},
        }
    return {
        "official_score": official_score(s.result for s in sections),
        "machine_types": types,
    }


def percent(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:6.2f}"


def table(data: dict[str, Any], reference: dict[str, Sequence[float]] | None = None) -> str:
    """A text table in percent: each section, each type's harmonic mean, the total.

    `reference` maps a machine type to the report's (AUC(s), AUC(t), pAUC) in percent,
    printed beside that type's own harmonic means.
    """
    head = f"{'machine type':<16}{'section':>8}{'AUC(s)':>8}{'AUC(t)':>8}{'pAUC':>8}"
    lines = [head + ("   report: AUC(s) AUC(t) pAUC" if reference else ""), "-" * len(head)]
    for machine_type, entry in data["machine_types"].items():
        for section, r in entry["sections"].items():
            values = (r["auc_source"], r["auc_target"], r["pauc"])
            lines.append(
                f"{machine_type:<16}{section:>8}" + "".join(f"{percent(v):>8}" for v in values)
            )
        means = type_means(entry)
        row = f"{machine_type:<16}{'hmean':>8}" + "".join(f"{percent(v):>8}" for v in means)
        ref = (reference or {}).get(machine_type)
        if ref:
            row += "   report:" + "".join(f"{v:7.2f}" for v in ref)
        lines.append(row)
    lines.append(f"official score (harmonic mean of all values): {percent(data['official_score'])}")
    return "\n".join(lines)


def type_means(entry: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """Harmonic means over a type's sections of AUC(s), AUC(t) and pAUC (Table 1's form)."""
    from edge_asd.metrics import harmonic_mean

    sections = entry["sections"].values()
    return tuple(
        harmonic_mean(r[k] for r in sections) for k in ("auc_source", "auc_target", "pauc")
    )


def plot_roc(sections: Sequence[SectionScores], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a training server
    import matplotlib.pyplot as plt

    from edge_asd.metrics import roc_curve

    figure, axes = plt.subplots(figsize=(6, 6))
    for s in sections:
        truth = np.array([c.is_anomaly for c in s.clips])
        if len(set(truth)) < 2:
            continue
        fpr, tpr = roc_curve(s.scores[~truth], s.scores[truth])
        axes.plot(fpr, tpr, label=f"{s.machine_type} {s.section}")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes.axvline(0.1, color="grey", linewidth=0.5)  # the pAUC range ends here
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC per section")
    axes.legend(fontsize="small", loc="lower right")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def write_report(sections: Sequence[SectionScores], out_dir: str | Path) -> dict[str, Any]:
    """Write the CSVs, summary.json and roc.png into `out_dir`; returns the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_dcase_csvs(sections, out_dir)
    data = summary(sections)
    (out_dir / "summary.json").write_text(json.dumps(data, indent=2) + "\n")
    plot_roc(sections, out_dir / "roc.png")
    return data
