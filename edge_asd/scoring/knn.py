"""The `knn` scorer: cosine distance to the nearest entry of a machine's memory bank.

The DCASE 2023-24 recipe under domain shift: at calibration time the embeddings of the
machine's own normal sound are summarised by k-means centres (the bulk, compact), and
every embedding of a small "new condition" set is added as it is (too few to cluster,
and each one is a condition the machine may legitimately be in). A window is scored by
how far its embedding is from the closest normal example, so a site adapts to its own
machine without retraining.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edge_asd.scoring.features import WindowFeatures
from edge_asd.scoring.registry import FitContext, FitData, Scorer, register

CENTRE_CANDIDATES = (16, 64)  # k-means centres calibration tries for the bank
DEFAULT_CENTRES = 16
_EPS = 1e-12  # keeps an all-zero embedding from dividing by zero (its cosine is then 0)
_MAX_ITERATIONS = 100


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float64 [N, D]; an all-zero row stays zero."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS)


def knn_scores(embeddings: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Cosine distance (1 - cos) of each embedding to its nearest bank entry: [B, D] -> [B].

    bank [M, D], M >= 1; neither needs to be normalised. Scores lie in [0, 2]; higher is
    more anomalous. Raises ValueError on an empty bank or mismatched dimensions.
    """
    embeddings = np.asarray(embeddings)
    bank = np.asarray(bank)
    if embeddings.ndim != 2 or bank.ndim != 2:
        raise ValueError(f"need [B, D] and [M, D], got {embeddings.shape} and {bank.shape}")
    if bank.shape[0] == 0:
        raise ValueError("the memory bank is empty")
    if embeddings.shape[1] != bank.shape[1]:
        raise ValueError(
            f"embedding dimension {embeddings.shape[1]} != bank dimension {bank.shape[1]}"
        )
    cosine = l2_normalise(embeddings) @ l2_normalise(bank).T  # [B, M]
    return np.clip(1.0 - cosine.max(axis=1), 0.0, 2.0)


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn with probability ∝ squared distance."""
    centres = [x[rng.integers(len(x))]]
    nearest = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        if total <= 0:  # every point sits on a centre already: any point will do
            index = int(rng.integers(len(x)))
        else:
            index = int(rng.choice(len(x), p=nearest / total))
        centres.append(x[index])
        nearest = np.minimum(nearest, ((x - x[index]) ** 2).sum(axis=1))
    return np.stack(centres)


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[N, K] squared Euclidean distances, via the expansion (no [N, K, D] temporary)."""
    d2 = (x**2).sum(axis=1)[:, None] - 2.0 * x @ centres.T + (centres**2).sum(axis=1)[None, :]
    return np.maximum(d2, 0.0)


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding on x [N, D]: centres [k, D] (k <= N).

    A cluster that empties is re-seeded at the point farthest from its centre, so k
    centres always come back.
    """
    rng = np.random.default_rng(seed)
    centres = _kmeans_plus_plus(x, k, rng)
    assignment = np.full(len(x), -1)
    for _ in range(_MAX_ITERATIONS):
        d2 = _squared_distances(x, centres)
        new_assignment = d2.argmin(axis=1)
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        own_d2 = d2[np.arange(len(x)), assignment]
        for j in range(k):
            members = x[assignment == j]
            if len(members):
                centres[j] = members.mean(axis=0)
            else:
                far = int(own_d2.argmax())
                centres[j] = x[far]
                assignment[far], own_d2[far] = j, -1.0  # not taken twice
    return centres


def build_bank(
    embeddings: np.ndarray,
    n_centres: int,
    new_condition: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A memory bank [M, D] float32: k-means centres of the normal embeddings, then extras.

    embeddings [N, D] are L2-normalised and clustered into min(n_centres, N) centres
    (k-means++ seeding, `seed` for reproducibility); the centres are scaled back to unit
    length. Every row of `new_condition` [P, D] is appended unchanged after them, so
    M = min(n_centres, N) + P. Raises ValueError when n_centres < 1, shapes disagree or
    nothing at all is given.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be [N, D], got shape {embeddings.shape}")
    if n_centres < 1:
        raise ValueError(f"n_centres must be >= 1, got {n_centres}")
    parts = []
    if len(embeddings):
        unit = l2_normalise(embeddings)
        parts.append(l2_normalise(kmeans(unit, min(n_centres, len(unit)), seed=seed)))
    if new_condition is not None:
        extra = np.asarray(new_condition, dtype=np.float64)
        if extra.ndim != 2 or extra.shape[1] != embeddings.shape[1]:
            raise ValueError(
                f"new_condition must be [P, {embeddings.shape[1]}], got shape {extra.shape}"
            )
        parts.append(extra)
    if not parts or sum(len(p) for p in parts) == 0:
        raise ValueError("no embeddings to build a memory bank from")
    return np.concatenate(parts).astype(np.float32)


@register
class KnnScorer(Scorer):
    """Cosine distance of the embedding to the nearest entry of the memory bank [M, D]."""

    kind = "knn"
    summary = "cosine distance of the embedding to the nearest of the machine's normal ones"

    def __init__(self, bank: np.ndarray, n_centres: int) -> None:
        self.bank = np.asarray(bank, dtype=np.float32)
        self.n_centres = int(n_centres)

    @classmethod
    def candidates(cls, context: FitContext) -> list[dict[str, Any]]:
        return [{"n_centres": n} for n in CENTRE_CANDIDATES]

    @classmethod
    def fit(cls, data: FitData, options: Mapping[str, Any], context: FitContext) -> KnnScorer:
        """k-means centres of the main windows plus every new-condition window."""
        n_centres = int(options.get("n_centres", DEFAULT_CENTRES))
        main = data.features.embedding[~data.new_condition]
        new = data.features.embedding[data.new_condition]
        if len(main) == 0:  # a fold of the new condition set with no main window left
            return cls(np.asarray(new, dtype=np.float32), n_centres)
        bank = build_bank(
            main,
            min(n_centres, len(main)),
            new_condition=new if len(new) else None,
            seed=context.seed,
        )
        return cls(bank, n_centres)

    def score(self, features: WindowFeatures) -> np.ndarray:
        return knn_scores(features.embedding, self.bank)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"n_centres": self.n_centres, "bank_entries": len(self.bank)}, {"bank": self.bank}

    @classmethod
    def restore(
        cls, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray], context: FitContext
    ) -> KnnScorer:
        bank = arrays.get("bank")
        if bank is None:
            raise ValueError("the knn scorer needs its memory bank (array `bank`)")
        dim = context.embedding_dim or (bank.shape[1] if bank.ndim == 2 else 0)
        if bank.ndim != 2 or len(bank) == 0 or bank.shape[1] != dim:
            raise ValueError(f"the memory bank has shape {bank.shape}, not [entries, {dim}]")
        if not np.isfinite(bank).all():
            raise ValueError("the memory bank holds NaN or infinite values")
        return cls(bank, int(params.get("n_centres", len(bank))))

    @classmethod
    def describe(cls, options: Mapping[str, Any]) -> str:
        return f"knn({options.get('n_centres', DEFAULT_CENTRES)} centres)"
