"""A machine's calibrated score: one or more fitted scorers, standardised and combined.

Each component is a fitted scorer (edge_asd.scoring.registry) with a `Standardiser`: the
mean and standard deviation of its honest (left-out) scores on the machine's normal
calibration windows. A window's score is its components' z-scores combined by `mean` or
`max`; with one component it is that component's z-score. So every calibrated score is
in the same unit whatever the scorers: standard deviations of the machine's own normal
scores above their mean, and a threshold of 4 reads "four standard deviations".

- `mean` averages independent evidence: the fused normal scores spread less than any
  single one's, and a fault one scorer sees strongly still lifts the mean.
- `max` is a union: a fault any component sees raises the score (scorers that see
  different fault kinds, such as a max-pooled and a mean-pooled twfr), at the price of
  every component's false alarms adding up, which the threshold, set on the combined
  honest scores, pays for.

Calibration chooses the components and the combiner by synthetic faults
(edge_asd.calibration.select); this module only computes and stores the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_asd.errors import UserError
from edge_asd.scoring.features import WindowFeatures
from edge_asd.scoring.registry import FitContext, Scorer, scorer_kind

COMBINERS = ("mean", "max")


@dataclass(frozen=True)
class Standardiser:
    """z = (score - mean) / std, from a scorer's honest normal scores."""

    mean: float
    std: float

    @classmethod
    def fit(cls, normal_scores: np.ndarray) -> Standardiser:
        """From honest normal scores [N]; ValueError with fewer than two or when they are
        (nearly) all the same: such a scorer tells nothing apart."""
        scores = np.asarray(normal_scores, dtype=np.float64)
        if scores.size < 2:
            raise ValueError("standardising a scorer needs at least two normal scores")
        std = float(scores.std())
        if not std > 1e-9 * max(1.0, abs(float(scores.mean()))):
            raise ValueError(f"its honest normal scores are constant ({scores.mean():.6g})")
        return cls(float(scores.mean()), std)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, dtype=np.float64) - self.mean) / self.std


def combine(z_scores: np.ndarray, combiner: str) -> np.ndarray:
    """[n_components, B] z-scores -> [B] by `combiner`; ValueError for an unknown one."""
    if combiner not in COMBINERS:
        raise ValueError(f"combiner must be one of {COMBINERS}, not {combiner!r}")
    z = np.asarray(z_scores, dtype=np.float64)
    return z.mean(axis=0) if combiner == "mean" else z.max(axis=0)


@dataclass(frozen=True)
class Component:
    """A fitted scorer and how its scores are standardised."""

    scorer: Scorer
    standardiser: Standardiser


@dataclass(frozen=True)
class Detector:
    """The calibrated score of a machine (see the module)."""

    components: tuple[Component, ...]
    combiner: str = "mean"

    def __post_init__(self) -> None:
        if not self.components:
            raise ValueError("a detector needs at least one component")
        if self.combiner not in COMBINERS:
            raise ValueError(f"combiner must be one of {COMBINERS}, not {self.combiner!r}")

    @property
    def kind(self) -> str:
        """The component kinds joined by '+', e.g. `knn+twfr`."""
        return "+".join(c.scorer.kind for c in self.components)

    def score(self, features: WindowFeatures) -> np.ndarray:
        """The calibrated scores float64 [B] of a batch of windows."""
        z = [c.standardiser(c.scorer.score(features)) for c in self.components]
        return combine(np.stack(z), self.combiner)

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(the `detector` mapping of calibration.yaml, its arrays named c<i>_<name>)."""
        listed, arrays = [], {}
        for i, component in enumerate(self.components):
            params, own = component.scorer.state()
            s = component.standardiser
            listed.append(
                {
                    "kind": component.scorer.kind,
                    "params": params,
                    "standardiser": {"mean": s.mean, "std": s.std},
                }
            )
            arrays.update({f"c{i}_{name}": array for name, array in own.items()})
        return {"combiner": self.combiner, "components": listed}, arrays

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        context: FitContext,
        source: str = "",
    ) -> Detector:
        """The detector `to_state` wrote; UserError naming `source` and the component."""
        components = []
        for i, item in enumerate(state.get("components", [])):
            kind = scorer_kind(item["kind"], source)
            own = {k[len(f"c{i}_") :]: v for k, v in arrays.items() if k.startswith(f"c{i}_")}
            try:
                scorer = kind.restore(item.get("params", {}), own, context)
            except (ValueError, UserError) as exc:  # UserError: a label the model lacks
                raise UserError(f"{source}: detector component {i} ({kind.kind}): {exc}") from None
            s = item["standardiser"]
            components.append(Component(scorer, Standardiser(float(s["mean"]), float(s["std"]))))
        try:
            return cls(tuple(components), state.get("combiner", "mean"))
        except ValueError as exc:
            raise UserError(f"{source}: detector: {exc}") from None


def single(scorer: Scorer, honest_normal_scores: Sequence[float]) -> Detector:
    """A one-component detector standardised on the scorer's honest normal scores."""
    return Detector((Component(scorer, Standardiser.fit(np.asarray(honest_normal_scores))),))
