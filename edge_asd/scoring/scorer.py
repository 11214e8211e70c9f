"""A machine's scorer: which score (section, knn) it uses and what that score needs.

The engine runs one batch per hop; each machine's scorer turns the engine's outputs into
one score per window (higher = more anomalous). A machine is bound to a model label, or
to a label prefix covering several finer labels (see `edge_asd.labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_asd.engines.base import EngineOutput
from edge_asd.errors import UserError
from edge_asd.labels import matching_indices
from edge_asd.scoring.knn import knn_scores
from edge_asd.scoring.section import section_scores

SCORER_KINDS = ("section", "knn")


class Scorer(Protocol):
    """Scores a batch of engine outputs: [B] float64, higher is more anomalous."""

    kind: str

    def __call__(self, output: EngineOutput) -> np.ndarray: ...


@dataclass(frozen=True)
class SectionScorer:
    """Minus the log softmax probability of the machine's label(s)."""

    label_indices: tuple[int, ...]
    kind: str = "section"

    def __call__(self, output: EngineOutput) -> np.ndarray:
        return section_scores(output.logits, self.label_indices)


@dataclass(frozen=True)
class KnnScorer:
    """Cosine distance of the embedding to the nearest entry of the memory bank [M, D]."""

    bank: np.ndarray
    kind: str = "knn"

    def __call__(self, output: EngineOutput) -> np.ndarray:
        return knn_scores(output.embedding, self.bank)


def section_scorer(labels: Sequence[str], binding: str) -> SectionScorer:
    """The section scorer of a machine bound to `binding` (a label or a label prefix).

    Raises UserError listing some of the model's labels when none matches.
    """
    return SectionScorer(tuple(matching_indices(labels, binding)))


def make_scorer(
    kind: str,
    labels: Sequence[str],
    binding: str | None = None,
    bank: np.ndarray | None = None,
    source: str = "",
) -> Scorer:
    """A scorer of `kind` for one machine; `source` names the file the choice came from.

    section needs `binding`; knn needs a non-empty `bank` [M, D]. Raises UserError when
    the kind is unknown or what it needs is missing.
    """
    where = f"{source}: " if source else ""
    if kind == "section":
        if not binding:
            raise UserError(f"{where}the section scorer needs a label")
        return section_scorer(labels, binding)
    if kind == "knn":
        if bank is None or len(bank) == 0:
            raise UserError(f"{where}the knn scorer needs a memory bank, and none is given")
        return KnnScorer(np.asarray(bank, dtype=np.float32))
    raise UserError(f"{where}unknown scorer {kind!r} (this edge-asd knows {SCORER_KINDS})")


def scorer_from_calibration(calibration, labels: Sequence[str], source: str = "") -> Scorer:
    """The scorer a calibration chose (its `scorer`, `label` and `bank`)."""
    return make_scorer(
        calibration.scorer,
        labels,
        binding=getattr(calibration, "label", None),
        bank=getattr(calibration, "bank", None),
        source=source,
    )
