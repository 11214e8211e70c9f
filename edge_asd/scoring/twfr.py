"""The `twfr` scorer (TWFR-GMM, Guan et al., ICASSP 2023): pooled log-mel and a Gaussian mixture.

No network is involved beyond the front end: each window's log-mel is pooled over time by
global weighted ranking at a decay r (edge_asd.scoring.features: r = 0 is the max, which
keeps transient faults such as clicks; r = 1 the mean, which keeps steady tones and the
spectral balance), standardised per band on the machine's normal windows, and a Gaussian
mixture with full, regularised covariances is fitted to them. The score is minus the
log-likelihood.

Options: `r` (one of edge_asd.scoring.features.POOLING_R), `n_components`, `reg_covar`
(added to every covariance's diagonal, in standardised units: shrinkage toward
independent bands, which the small normal sets of a calibration need: a full 128 x 128
covariance from a few hundred overlapping windows is nearly singular) and `level_norm`
(subtract each window's mean level, edge_asd.scoring.features.WindowFeatures.level_db,
from its pooled bands: the scorer then ignores a change of the input's gain, and with it
a fault that only makes the machine louder in every band alike).

Which options a machine gets is chosen by calibration on synthetic faults
(edge_asd.calibration.select), never by comparing likelihoods across options: likelihoods
of differently pooled features are not comparable (smoother features always look likelier).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_asd.blas import one_blas_thread
from edge_asd.scoring.features import POOLING_R, WindowFeatures
from edge_asd.scoring.registry import FitContext, FitData, Scorer, register

R_CANDIDATES = (0.0, 0.5, 0.9, 1.0)  # of POOLING_R, tried by calibration
COMPONENT_CANDIDATES = (1, 2)
REG_CANDIDATES = (0.1, 1.0)  # added to covariance diagonals (standardised features)
# Standardising divides by each band's spread over normal windows, in dB; a band steadier
# than this (digital silence, or a fit on one window) is treated as this steady, so that a
# change of a hundredth of a dB does not count as a hundred deviations.
STD_FLOOR_DB = 0.1
EM_ITERATIONS = 100


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
    iterations: int = EM_ITERATIONS,
    reg_covar: float = 1.0,
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


@register
class TwfrScorer(Scorer):
    """Minus the log-likelihood of the GWRP-pooled log-mel under the machine's mixture."""

    kind = "twfr"
    summary = "how unlikely the machine's mixture finds the time-pooled log-mel (TWFR-GMM)"

    def __init__(
        self,
        r: float,
        level_norm: bool,
        feature_mean: np.ndarray,
        feature_std: np.ndarray,
        gmm: GaussianMixture,
        reg_covar: float,
    ) -> None:
        self.r = float(r)
        self.level_norm = bool(level_norm)
        self.feature_mean = np.asarray(feature_mean, dtype=np.float64)
        self.feature_std = np.asarray(feature_std, dtype=np.float64)
        self.gmm = gmm
        self.reg_covar = float(reg_covar)

    @classmethod
    def candidates(cls, context: FitContext) -> list[dict[str, Any]]:
        return [
            {"r": r, "n_components": k, "reg_covar": reg, "level_norm": norm}
            for r in R_CANDIDATES
            for k in COMPONENT_CANDIDATES
            for reg in REG_CANDIDATES
            for norm in (False, True)
        ]

    @classmethod
    def fit(cls, data: FitData, options: Mapping[str, Any], context: FitContext) -> TwfrScorer:
        """A mixture on every given window's features; ValueError with fewer than two."""
        r, norm = float(options.get("r", 1.0)), bool(options.get("level_norm", False))
        reg = float(options.get("reg_covar", 1.0))
        x = pooled_features(data.features, r, norm)
        if len(x) < 2:
            raise ValueError("the twfr scorer needs at least two windows of normal sound")
        mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), STD_FLOOR_DB)
        with one_blas_thread():
            gmm = fit_gmm(
                (x - mean) / std, int(options.get("n_components", 1)), context.seed, reg_covar=reg
            )
        return cls(r, norm, mean, std, gmm, reg)

    def score(self, features: WindowFeatures) -> np.ndarray:
        x = pooled_features(features, self.r, self.level_norm)
        return -self.gmm.log_likelihood((x - self.feature_mean) / self.feature_std)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params = {
            "r": self.r,
            "n_components": len(self.gmm.weights),
            "reg_covar": self.reg_covar,
            "level_norm": self.level_norm,
        }
        arrays = {
            "feature_mean": self.feature_mean,
            "feature_std": self.feature_std,
            "weights": self.gmm.weights,
            "means": self.gmm.means,
            "precision_chols": self.gmm.precision_chols,
        }
        return params, arrays

    @classmethod
    def restore(
        cls, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray], context: FitContext
    ) -> TwfrScorer:
        r = float(params.get("r", -1))
        if r not in POOLING_R:
            raise ValueError(f"twfr r {params.get('r')!r} is not one of {POOLING_R}")
        missing = [n for n in TWFR_ARRAYS if n not in arrays]
        if missing:
            raise ValueError(f"the twfr scorer needs the arrays {', '.join(missing)}")
        check_arrays(arrays, context.n_mels)
        gmm = GaussianMixture(arrays["weights"], arrays["means"], arrays["precision_chols"])
        return cls(
            r,
            bool(params.get("level_norm", False)),
            arrays["feature_mean"],
            arrays["feature_std"],
            gmm,
            float(params.get("reg_covar", 0.0)),
        )

    @classmethod
    def describe(cls, options: Mapping[str, Any]) -> str:
        norm = ", level-normalised" if options.get("level_norm") else ""
        return (
            f"twfr(r={float(options.get('r', 1.0)):g}, {options.get('n_components', 1)} comp, "
            f"reg {float(options.get('reg_covar', 1.0)):g}{norm})"
        )


TWFR_ARRAYS = ("feature_mean", "feature_std", "weights", "means", "precision_chols")


def pooled_features(features: WindowFeatures, r: float, level_norm: bool) -> np.ndarray:
    """The pooled log-mel at `r`, float64 [B, n_mels]; minus each window's level if asked."""
    x = features.pooled[:, POOLING_R.index(r)].astype(np.float64)
    return x - features.level_db[:, None] if level_norm else x


def check_arrays(arrays: Mapping[str, np.ndarray], n_mels: int) -> None:
    """ValueError saying what is wrong with a mixture's arrays for a model of `n_mels`."""
    a = {name: np.asarray(arrays[name]) for name in TWFR_ARRAYS}
    k = a["weights"].shape[0] if a["weights"].ndim == 1 else -1
    d = n_mels or (a["feature_mean"].shape[0] if a["feature_mean"].ndim == 1 else -1)
    expected = {
        "feature_mean": (d,),
        "feature_std": (d,),
        "weights": (k,),
        "means": (k, d),
        "precision_chols": (k, d, d),
    }
    wrong = [
        f"{n} shape {a[n].shape} is not {expected[n]}"
        for n in TWFR_ARRAYS
        if a[n].shape != expected[n]
    ]
    if wrong or k < 1:
        raise ValueError("twfr arrays: " + ("; ".join(wrong) or "no mixture component"))
    if not all(np.isfinite(x).all() for x in a.values()):
        raise ValueError("the twfr arrays hold NaN or infinite values")
    if not (a["feature_std"] > 0).all() or not (a["weights"] > 0).all():
        raise ValueError("twfr feature_std and weights must be positive")
