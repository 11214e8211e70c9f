"""The scorer kinds, registered by name: each one class that fits, scores, saves and loads.

A scorer turns a batch of `WindowFeatures` into one score per window, higher meaning more
anomalous. Each kind is one module of edge_asd.scoring holding its mathematics and one
`Scorer` subclass decorated with `@register`; its name is the word users type
(`--scorer knn`) and the word calibration.yaml records. Adding a kind is one new module
and its name in KIND_MODULES.

A kind says which option sets calibration may try (`candidates`), fits one on a
machine's normal windows (`fit`), and round-trips its fitted state through
calibration.yaml and its .npz (`state` / `restore`). Calibration decides which kinds and
options a machine gets (edge_asd.calibration.select); everything that scores (the daemon,
`edge-asd score`, calibration's honest scores, `edge-asd-train evaluate`, the
benchmarks) uses the restored or fitted objects the same way.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edge_asd.errors import UserError
from edge_asd.scoring.features import WindowFeatures

KIND_MODULES = ("knn", "section", "twfr")  # edge_asd.scoring.<module> registers each kind


@dataclass(frozen=True)
class FitContext:
    """What fitting and restoring need besides the windows: the model's labels and output
    sizes (0: not checked), the machine's label binding (a label or a prefix; None when
    not given) and the random seed."""

    labels: tuple[str, ...]
    binding: str | None = None
    seed: int = 0
    embedding_dim: int = 0
    n_mels: int = 0

    @classmethod
    def of_model(cls, info: Any, binding: str | None = None, seed: int = 0) -> FitContext:
        """The context of a model (an edge_asd.model_file.ModelInfo)."""
        return cls(tuple(info.labels), binding, seed, info.embedding_dim, info.front_end.n_mels)


@dataclass(frozen=True)
class FitData:
    """Normal windows to fit on, and which of them belong to the "new condition" set
    (a second operating mode the user named, kept raw in a knn bank)."""

    features: WindowFeatures
    new_condition: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        if len(self.new_condition) != len(self.features):
            mask = np.zeros(len(self.features), dtype=bool)
            mask[: len(self.new_condition)] = self.new_condition
            object.__setattr__(self, "new_condition", mask)

    def take(self, rows: np.ndarray) -> FitData:
        """The windows selected by the boolean mask `rows`."""
        return FitData(self.features.take(rows), self.new_condition[rows])


class Scorer(ABC):
    """One fitted scorer of a registered kind (see the module)."""

    kind: ClassVar[str]
    summary: ClassVar[str]  # one line: what it scores

    @classmethod
    @abstractmethod
    def candidates(cls, context: FitContext) -> list[dict[str, Any]]:
        """Option sets calibration may try for this machine (empty: the kind cannot
        serve it, e.g. `section` without a usable label binding)."""

    @classmethod
    @abstractmethod
    def fit(cls, data: FitData, options: Mapping[str, Any], context: FitContext) -> Scorer:
        """A scorer fitted on normal windows; ValueError when they cannot support it."""

    @abstractmethod
    def score(self, features: WindowFeatures) -> np.ndarray:
        """Scores float64 [B] of a batch of windows; higher is more anomalous."""

    @abstractmethod
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(parameters for calibration.yaml, arrays for its .npz): what `restore` needs."""

    @classmethod
    @abstractmethod
    def restore(
        cls, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray], context: FitContext
    ) -> Scorer:
        """The scorer `state` described; ValueError saying what is missing or wrong."""

    @classmethod
    def describe(cls, options: Mapping[str, Any]) -> str:
        """A short name for a candidate, e.g. `twfr(r=0,k=1,reg=1)`."""
        inner = ",".join(f"{k}={_short(v)}" for k, v in options.items())
        return f"{cls.kind}({inner})" if inner else cls.kind


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_KINDS: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: make a Scorer subclass known by its `kind`."""
    if cls.kind in _KINDS and _KINDS[cls.kind] is not cls:
        raise ValueError(f"two scorer kinds are named {cls.kind!r}")
    _KINDS[cls.kind] = cls
    return cls


def kinds() -> dict[str, type[Scorer]]:
    """Every registered kind by name (importing the kind modules once)."""
    for module in KIND_MODULES:
        importlib.import_module(f"edge_asd.scoring.{module}")
    return dict(_KINDS)


def scorer_kind(name: str, where: str = "") -> type[Scorer]:
    """The kind called `name`; UserError naming the known ones when there is none."""
    known = kinds()
    if name not in known:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}unknown scorer {name!r} (known: {', '.join(sorted(known))})", 2)
    return known[name]


def parse_kinds(spec: str, where: str = "--scorer") -> tuple[str, ...]:
    """`knn+twfr` -> ("knn", "twfr"); UserError naming an unknown or repeated kind."""
    names = tuple(part.strip() for part in spec.split("+"))
    for name in names:
        scorer_kind(name, where)
    if len(set(names)) != len(names):
        raise UserError(f"{where}: {spec!r} names a scorer twice", 2)
    return names


def known_kinds_text() -> str:
    """`knn`, `section`, `twfr` as a comma-separated list, for help texts."""
    return ", ".join(sorted(kinds()))


def stack_scores(scorers: Sequence[Scorer], features: WindowFeatures) -> np.ndarray:
    """Each scorer's scores of the same windows: float64 [n_scorers, B]."""
    return np.stack([s.score(features) for s in scorers])
