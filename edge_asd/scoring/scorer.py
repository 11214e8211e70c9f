"""A machine's scorer: which score (section, knn, twfr or a fusion) it uses, and its state.

The engine runs one batch per hop; each machine's scorer turns the engine's outputs into
one score per window (higher = more anomalous). A machine is bound to a model label, or
to a label prefix covering several finer labels (see `edge_asd.labels`). A fusion such as
`knn+twfr` runs each of its scorers and combines their standardised scores
(`edge_asd.scoring.fusion`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edge_asd.engines.base import EngineOutput
from edge_asd.errors import UserError
from edge_asd.labels import matching_indices
from edge_asd.scoring.fusion import COMBINERS, Standardiser, fuse, parse_scorers
from edge_asd.scoring.knn import knn_scores
from edge_asd.scoring.section import section_scores
from edge_asd.scoring.twfr import TwfrModel

SCORER_KINDS = ("section", "knn", "twfr")
TWFR_PREFIX = "twfr_"  # the twfr model's arrays in a calibration's .npz


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


@dataclass(frozen=True)
class TwfrScorer:
    """Minus the log-likelihood of the GWRP-pooled log-mel under the machine's mixture."""

    model: TwfrModel
    kind: str = "twfr"

    def __call__(self, output: EngineOutput) -> np.ndarray:
        if output.logmel is None:
            raise ValueError("the twfr scorer needs the engine's logmel output")
        return self.model.scores(output.logmel)


@dataclass(frozen=True)
class FusedScorer:
    """Several scorers' scores, each standardised on its honest normal scores, combined."""

    scorers: tuple[Scorer, ...]
    standardisers: Mapping[str, Standardiser]
    combiner: str = "mean"

    @property
    def kind(self) -> str:
        return "+".join(s.kind for s in self.scorers)

    def __call__(self, output: EngineOutput) -> np.ndarray:
        return fuse({s.kind: s(output) for s in self.scorers}, self.standardisers, self.combiner)


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
    twfr: TwfrModel | None = None,
) -> Scorer:
    """A single scorer of `kind` for one machine; `source` names the file the choice came from.

    section needs `binding`; knn a non-empty `bank` [M, D]; twfr a fitted `twfr` model.
    Raises UserError when the kind is unknown or what it needs is missing.
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
    if kind == "twfr":
        if twfr is None:
            raise UserError(f"{where}the twfr scorer needs its fitted mixture, and none is given")
        return TwfrScorer(twfr)
    raise UserError(f"{where}unknown scorer {kind!r} (this edge-asd knows {SCORER_KINDS})")


def scorer_names(spec: str, source: str = "") -> tuple[str, ...]:
    """`knn+twfr` -> ("knn", "twfr"); UserError naming an unknown or repeated scorer."""
    try:
        return parse_scorers(spec, SCORER_KINDS)
    except ValueError as exc:
        raise UserError(f"{source}: {exc}" if source else str(exc), 2) from None


def scorer_from_calibration(calibration: Any, labels: Sequence[str], source: str = "") -> Scorer:
    """The scorer a calibration chose: its `scorer` (one name, or several joined by '+'),
    `label`, `bank`, twfr arrays and, for a fusion, the standardisers in `scorer_params`.

    Raises UserError naming `source` when something the scorer needs is missing.
    """
    names = scorer_names(calibration.scorer, source)
    arrays = dict(getattr(calibration, "arrays", None) or {})
    twfr = None
    if "twfr" in names:
        try:
            twfr = TwfrModel.from_arrays(arrays, TWFR_PREFIX)
        except KeyError as exc:
            raise UserError(f"{source}: the twfr scorer's array {exc} is missing") from None
    singles = tuple(
        make_scorer(
            name,
            labels,
            binding=getattr(calibration, "label", None),
            bank=getattr(calibration, "bank", None),
            source=source,
            twfr=twfr,
        )
        for name in names
    )
    if len(singles) == 1:
        return singles[0]
    params = getattr(calibration, "scorer_params", {}) or {}
    return FusedScorer(
        singles, fusion_standardisers(params, names, source), _combiner(params, source)
    )


def fusion_standardisers(
    params: Mapping[str, Any], names: Sequence[str], source: str = ""
) -> dict[str, Standardiser]:
    """Each fused scorer's standardiser, from `scorer_params[name]["standardiser"]`."""
    out = {}
    for name in names:
        own = params.get(name)
        given = own.get("standardiser") if isinstance(own, Mapping) else None
        try:
            mean, std = float(given["mean"]), float(given["std"])
        except (KeyError, TypeError, ValueError):
            raise UserError(
                f"{source}: scorer_params.{name}.standardiser needs a mean and a std"
            ) from None
        if not (np.isfinite(mean) and np.isfinite(std) and std > 0):
            raise UserError(
                f"{source}: scorer_params.{name}.standardiser: mean {mean}, std {std} "
                "(need finite values and std > 0)"
            )
        out[name] = Standardiser(mean, std)
    return out


def _combiner(params: Mapping[str, Any], source: str) -> str:
    combiner = params.get("combiner", "mean")
    if combiner not in COMBINERS:
        raise UserError(f"{source}: scorer_params.combiner {combiner!r}: use one of {COMBINERS}")
    return combiner
