"""The `twfr` scorer (TWFR-GMM, Guan et al. 2023): pooled log-mel and a Gaussian mixture.

No network is involved beyond the front end: each window's log-mel [n_mels, frames] is
pooled over time by global weighted ranking (GWRP: sort each band's values descending,
weight the k-th by r**k; r = 1 is the mean, r = 0 the max, which keeps transient faults
such as clicks), and a Gaussian mixture with full, regularised covariances is fitted on
the machine's normal windows. The score is minus the log-likelihood.

r, the number of components and the covariance regularisation are chosen from normal
windows alone: each candidate is fitted on some recordings and judged by the mean
log-likelihood of the others, on features standardised by the fitting part (so that
likelihoods under different r are on a comparable scale; this is a heuristic, and the
calibration records what it chose and the whole table). The regularisation matters on
the small normal sets of a calibration: a full 128 x 128 covariance from a few hundred
overlapping windows is nearly singular, and only a held-out judgement shows how much
shrinkage toward independent bands the data supports.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

R_CANDIDATES = (0.0, 0.5, 0.9, 0.98, 1.0)
COMPONENT_CANDIDATES = (1, 2, 4)
REG_CANDIDATES = (1e-2, 1e-1, 1.0)  # added to covariance diagonals (standardised features)
REG_COVAR = REG_CANDIDATES[0]
# Standardising divides by each band's spread over normal windows, in dB; a band steadier
# than this (digital silence, or a fit on one window) is treated as this steady, so that a
# change of a hundredth of a dB does not count as a hundred deviations.
STD_FLOOR_DB = 0.1


def one_blas_thread() -> Any:
    """A context in which numpy's BLAS runs on one thread (when threadpoolctl is there).

    The mixture's matrices (n_mels x n_mels, a few hundred rows) are too small to gain
    from threads, and on a busy machine BLAS threads waiting for a core spin: choosing r
    and components on 11 windows took 0.24 s of CPU on one thread and 38 s (166 s of
    wall time) on two, on a 2-core machine loaded with other work.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; degrade to numpy's default
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def gwrp(logmel: np.ndarray, r: float) -> np.ndarray:
    """Global weighted ranking pooling over time: [..., n_mels, frames] -> [..., n_mels]."""
    ranked = -np.sort(-np.asarray(logmel, dtype=np.float64), axis=-1)  # descending
    weights = np.power(r, np.arange(ranked.shape[-1], dtype=np.float64))  # 0**0 == 1
    return ranked @ weights / weights.sum()


def pool_candidates(
    logmel: np.ndarray, r_candidates: tuple[float, ...] = R_CANDIDATES
) -> np.ndarray:
    """GWRP at every candidate r, sorting once: [B, n_mels, frames] -> float32 [B, n_r, n_mels].

    What a calibration keeps of each window instead of its log-mel (n_r * n_mels values
    instead of n_mels * frames).
    """
    ranked = -np.sort(-np.asarray(logmel, dtype=np.float64), axis=-1)
    frames = np.arange(ranked.shape[-1], dtype=np.float64)
    weights = np.stack([np.power(r, frames) for r in r_candidates])  # [n_r, frames]
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("bmf,rf->brm", ranked, weights).astype(np.float32)


@dataclass(frozen=True)
class GaussianMixture:
    """A fitted mixture over standardised features: weights [K], means [K,D], chols [K,D,D]."""

    weights: np.ndarray
    means: np.ndarray
    precision_chols: np.ndarray  # Cholesky factors of the precision matrices

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        """Per-row log-likelihood of x [N, D]."""
        return _logsumexp(_component_log_probs(x, self.weights, self.means, self.precision_chols))


def _component_log_probs(
    x: np.ndarray, weights: np.ndarray, means: np.ndarray, precision_chols: np.ndarray
) -> np.ndarray:
    """log(weight_k) + log N(x; mean_k, cov_k) for each row and component: [N, K]."""
    x = np.asarray(x, dtype=np.float64)
    n_dims = x.shape[1]
    columns = []
    for weight, mean, chol in zip(weights, means, precision_chols, strict=True):
        y = (x - mean) @ chol
        log_det = np.log(np.diag(chol)).sum()
        columns.append(np.log(weight) + log_det - 0.5 * (y**2).sum(axis=1))
    return np.stack(columns, axis=1) - 0.5 * n_dims * np.log(2 * np.pi)


def _logsumexp(values: np.ndarray) -> np.ndarray:
    """log(sum(exp(values), axis=1)), stable: [N, K] -> [N]."""
    top = values.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(values - top).sum(axis=1, keepdims=True)))[:, 0]


def _precision_chol(cov: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor U of the precision (U U^T = cov^-1), from cov [D, D]."""
    from scipy.linalg import solve_triangular

    lower = np.linalg.cholesky(cov)
    return solve_triangular(lower, np.eye(cov.shape[0]), lower=True).T


def fit_gmm(
    x: np.ndarray,
    n_components: int,
    seed: int = 0,
    iterations: int = 100,
    reg_covar: float = REG_COVAR,
) -> GaussianMixture:
    """EM for a full-covariance mixture on x [N, D]; components capped at N.

    `reg_covar` is added to every covariance's diagonal (in the units of x).
    """
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n, dims = x.shape
    k = max(1, min(n_components, n))
    means = x[rng.choice(n, size=k, replace=False)]
    resp = np.eye(k)[np.argmin(_squared_distances(x, means), axis=1)]
    previous = -np.inf
    for _ in range(iterations):
        counts = resp.sum(axis=0) + 1e-10
        weights = counts / n
        means = resp.T @ x / counts[:, None]
        chols = []
        for j in range(k):
            diff = x - means[j]
            cov = (resp[:, j, None] * diff).T @ diff / counts[j]
            chols.append(_precision_chol(cov + reg_covar * np.eye(dims)))
        model = GaussianMixture(weights, means, np.stack(chols))
        per_component = _component_log_probs(x, weights, means, model.precision_chols)
        log_norm = _logsumexp(per_component)
        resp = np.exp(per_component - log_norm[:, None])
        mean_ll = float(log_norm.mean())
        if mean_ll - previous < 1e-4:
            break
        previous = mean_ll
    return model


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[N, K] squared distances without an [N, K, D] temporary."""
    return (x**2).sum(axis=1)[:, None] - 2.0 * x @ centres.T + (centres**2).sum(axis=1)[None, :]


@dataclass(frozen=True)
class TwfrModel:
    """A fitted twfr scorer: pooling decay r, feature standardisation and the mixture."""

    r: float
    feature_mean: np.ndarray
    feature_std: np.ndarray
    gmm: GaussianMixture

    @property
    def n_components(self) -> int:
        return len(self.gmm.weights)

    def scores(self, logmel: np.ndarray) -> np.ndarray:
        """Minus log-likelihood of each window's pooled log-mel; logmel [B, n_mels, frames]."""
        return self.pooled_scores(gwrp(logmel, self.r))

    def pooled_scores(self, pooled: np.ndarray) -> np.ndarray:
        """Minus log-likelihood of features already pooled at this model's r: [B, n_mels]."""
        features = (np.asarray(pooled, dtype=np.float64) - self.feature_mean) / self.feature_std
        return -self.gmm.log_likelihood(features)

    def to_arrays(self, prefix: str = "twfr_") -> dict[str, np.ndarray]:
        """Arrays for an .npz beside calibration.yaml (see from_arrays)."""
        return {
            f"{prefix}r": np.asarray(self.r),
            f"{prefix}feature_mean": self.feature_mean,
            f"{prefix}feature_std": self.feature_std,
            f"{prefix}weights": self.gmm.weights,
            f"{prefix}means": self.gmm.means,
            f"{prefix}precision_chols": self.gmm.precision_chols,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "twfr_") -> TwfrModel:
        """The model `to_arrays` wrote; KeyError naming the first missing array."""
        gmm = GaussianMixture(
            arrays[f"{prefix}weights"], arrays[f"{prefix}means"], arrays[f"{prefix}precision_chols"]
        )
        return cls(
            float(arrays[f"{prefix}r"]),
            arrays[f"{prefix}feature_mean"],
            arrays[f"{prefix}feature_std"],
            gmm,
        )


def fit_pooled(
    pooled: np.ndarray, r: float, n_components: int, reg_covar: float = REG_COVAR, seed: int = 0
) -> TwfrModel:
    """Fit a twfr scorer on normal windows' features pooled at `r`: [N, n_mels]."""
    pooled = np.asarray(pooled, dtype=np.float64)
    mean, std = pooled.mean(axis=0), np.maximum(pooled.std(axis=0), STD_FLOOR_DB)
    gmm = fit_gmm((pooled - mean) / std, n_components, seed=seed, reg_covar=reg_covar)
    return TwfrModel(float(r), mean, std, gmm)


def fit_twfr(
    logmel: np.ndarray, r: float, n_components: int, seed: int = 0, reg_covar: float = REG_COVAR
) -> TwfrModel:
    """Fit a twfr scorer on normal windows' log-mel [N, n_mels, frames]."""
    return fit_pooled(gwrp(logmel, r), r, n_components, reg_covar, seed)


@dataclass(frozen=True)
class TwfrChoice:
    """What select chose (r, components, regularisation) and every candidate's held-out
    mean log-likelihood, keyed "r=<r>,k=<k>,reg=<reg>"."""

    r: float
    n_components: int
    reg_covar: float
    held_out: dict[str, float]


def _folds(groups: np.ndarray) -> np.ndarray:
    """Two folds over windows: whole groups alternately, or one group's two halves (never
    alternate windows: neighbours share most of their audio)."""
    unique = np.unique(groups)
    if len(unique) >= 2:
        fold_of = {g: i % 2 for i, g in enumerate(unique)}
        return np.array([fold_of[g] for g in groups])
    return (np.arange(len(groups)) >= len(groups) / 2).astype(int)


def _held_out(pooled: np.ndarray, folds: np.ndarray, k: int, reg: float, seed: int) -> float:
    scores = []
    for fold in (0, 1):
        fit_part, test_part = pooled[folds != fold], pooled[folds == fold]
        if len(fit_part) < 2 or len(test_part) == 0:
            continue
        model = fit_pooled(fit_part, 0.0, k, reg, seed)
        scores.append(-model.pooled_scores(test_part).mean())
    return float(np.mean(scores)) if scores else -np.inf


def select_pooled(
    pooled: np.ndarray,
    groups: np.ndarray,
    r_candidates: tuple[float, ...] = R_CANDIDATES,
    component_candidates: tuple[int, ...] = COMPONENT_CANDIDATES,
    reg_candidates: tuple[float, ...] = REG_CANDIDATES,
    seed: int = 0,
) -> tuple[TwfrModel, TwfrChoice]:
    """Choose r, components and regularisation by held-out likelihood, then refit on all.

    pooled [N, n_r, n_mels] (pool_candidates at `r_candidates`); groups [N] names each
    window's recording: with two or more, whole recordings alternate between two folds;
    with one, its first and second halves are the folds. When no fold has two windows to
    fit on, nothing can be judged and the safest candidate is taken (the largest r, the
    fewest components, the strongest regularisation). Raises ValueError with fewer than
    two windows.
    """
    pooled = np.asarray(pooled)
    if len(pooled) < 2:
        raise ValueError("fitting a twfr scorer needs at least two windows")
    folds = _folds(np.asarray(groups))
    held_out: dict[str, float] = {}
    with one_blas_thread():
        for i, r in enumerate(r_candidates):
            for k in component_candidates:
                for reg in reg_candidates:
                    key = f"r={r:g},k={k},reg={reg:g}"
                    held_out[key] = _held_out(pooled[:, i], folds, k, reg, seed)
        best = max(held_out, key=held_out.get)
        if not np.isfinite(held_out[best]):  # no fold could be fitted: the safest candidate
            best = (
                f"r={max(r_candidates):g},k={min(component_candidates)},reg={max(reg_candidates):g}"
            )
        r, k, reg = (float(part.split("=")[1]) for part in best.split(","))
        index = [f"{c:g}" for c in r_candidates].index(f"{r:g}")
        model = fit_pooled(pooled[:, index], r, int(k), reg, seed)
    return model, TwfrChoice(r, int(k), reg, held_out)


def select_twfr(
    logmel: np.ndarray,
    groups: np.ndarray,
    r_candidates: tuple[float, ...] = R_CANDIDATES,
    component_candidates: tuple[int, ...] = COMPONENT_CANDIDATES,
    reg_candidates: tuple[float, ...] = REG_CANDIDATES,
    seed: int = 0,
) -> tuple[TwfrModel, TwfrChoice]:
    """`select_pooled` on log-mel [N, n_mels, frames] (pooled here)."""
    pooled = pool_candidates(logmel, r_candidates)
    return select_pooled(pooled, groups, r_candidates, component_candidates, reg_candidates, seed)
