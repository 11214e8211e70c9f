"""The `twfr` scorer (TWFR-GMM, Guan et al. 2023): pooled log-mel and a Gaussian mixture.

No network is involved beyond the front end: each window's log-mel [n_mels, frames] is
pooled over time by global weighted ranking (GWRP: sort each band's values descending,
weight the k-th by r**k; r = 1 is the mean, r = 0 the max, which keeps transient faults
such as clicks), and a Gaussian mixture with full, regularised covariances is fitted on
the machine's normal windows. The score is minus the log-likelihood.

r and the number of components are chosen from normal windows alone: each candidate is
fitted on some recordings and judged by the mean log-likelihood of the others, on
features standardised by the fitting part (so that likelihoods under different r are on a
comparable scale; this is a heuristic, and the calibration records what it chose).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

R_CANDIDATES = (0.0, 0.5, 0.9, 0.98, 1.0)
COMPONENT_CANDIDATES = (1, 2, 4)
REG_COVAR = 1e-2  # added to covariance diagonals, in units of the standardised features


def gwrp(logmel: np.ndarray, r: float) -> np.ndarray:
    """Global weighted ranking pooling over time: [..., n_mels, frames] -> [..., n_mels]."""
    ranked = -np.sort(-np.asarray(logmel, dtype=np.float64), axis=-1)  # descending
    weights = np.power(r, np.arange(ranked.shape[-1], dtype=np.float64))  # 0**0 == 1
    return ranked @ weights / weights.sum()


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
    lower = np.linalg.cholesky(cov)
    return np.linalg.solve(lower, np.eye(cov.shape[0])).T


def fit_gmm(
    x: np.ndarray, n_components: int, seed: int = 0, iterations: int = 100
) -> GaussianMixture:
    """EM for a full-covariance mixture on x [N, D]; components capped at N."""
    rng = np.random.default_rng(seed)
    n, dims = x.shape
    k = max(1, min(n_components, n))
    means = x[rng.choice(n, size=k, replace=False)]
    resp = np.eye(k)[np.argmin(((x[:, None, :] - means[None]) ** 2).sum(-1), axis=1)]
    previous = -np.inf
    for _ in range(iterations):
        counts = resp.sum(axis=0) + 1e-10
        weights = counts / n
        means = resp.T @ x / counts[:, None]
        chols = []
        for j in range(k):
            diff = x - means[j]
            cov = (resp[:, j, None] * diff).T @ diff / counts[j]
            chols.append(_precision_chol(cov + REG_COVAR * np.eye(dims)))
        model = GaussianMixture(weights, means, np.stack(chols))
        per_component = _component_log_probs(x, weights, means, model.precision_chols)
        log_norm = _logsumexp(per_component)
        resp = np.exp(per_component - log_norm[:, None])
        mean_ll = float(log_norm.mean())
        if mean_ll - previous < 1e-4:
            break
        previous = mean_ll
    return model


@dataclass(frozen=True)
class TwfrModel:
    """A fitted twfr scorer: pooling decay r, feature standardisation and the mixture."""

    r: float
    feature_mean: np.ndarray
    feature_std: np.ndarray
    gmm: GaussianMixture

    def scores(self, logmel: np.ndarray) -> np.ndarray:
        """Minus log-likelihood of each window's pooled log-mel; logmel [B, n_mels, frames]."""
        features = (gwrp(logmel, self.r) - self.feature_mean) / self.feature_std
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
        gmm = GaussianMixture(
            arrays[f"{prefix}weights"], arrays[f"{prefix}means"], arrays[f"{prefix}precision_chols"]
        )
        return cls(
            float(arrays[f"{prefix}r"]),
            arrays[f"{prefix}feature_mean"],
            arrays[f"{prefix}feature_std"],
            gmm,
        )


def fit_twfr(logmel: np.ndarray, r: float, n_components: int, seed: int = 0) -> TwfrModel:
    """Fit a twfr scorer on normal windows' log-mel [N, n_mels, frames]."""
    pooled = gwrp(logmel, r)
    mean, std = pooled.mean(axis=0), pooled.std(axis=0) + 1e-6
    return TwfrModel(r, mean, std, fit_gmm((pooled - mean) / std, n_components, seed=seed))


def select_twfr(
    logmel: np.ndarray,
    groups: np.ndarray,
    r_candidates: tuple[float, ...] = R_CANDIDATES,
    component_candidates: tuple[int, ...] = COMPONENT_CANDIDATES,
    seed: int = 0,
) -> tuple[TwfrModel, dict[str, float]]:
    """Choose r and components by held-out likelihood over recording groups, then refit on all.

    logmel [N, n_mels, frames]; groups [N] names each window's recording (at least two
    distinct groups give a held-out estimate; with one, windows alternate into two folds).
    Returns the model fitted on every window and the held-out mean log-likelihood of each
    candidate, keyed "r=<r>,k=<k>".
    """
    groups = np.asarray(groups)
    unique = np.unique(groups)
    if len(unique) >= 2:
        fold_of = {g: i % 2 for i, g in enumerate(unique)}
        folds = np.array([fold_of[g] for g in groups])
    else:
        folds = np.arange(len(groups)) % 2
    results: dict[str, float] = {}
    for r in r_candidates:
        pooled = gwrp(logmel, r)
        for k in component_candidates:
            held_out = []
            for fold in (0, 1):
                fit_part, test_part = pooled[folds != fold], pooled[folds == fold]
                if len(fit_part) < 2 or len(test_part) == 0:
                    continue
                mean, std = fit_part.mean(axis=0), fit_part.std(axis=0) + 1e-6
                gmm = fit_gmm((fit_part - mean) / std, k, seed=seed)
                held_out.append(gmm.log_likelihood((test_part - mean) / std).mean())
            results[f"r={r},k={k}"] = float(np.mean(held_out)) if held_out else -np.inf
    best = max(results, key=results.get)
    r_best, k_best = (float(part.split("=")[1]) for part in best.split(","))
    return fit_twfr(logmel, r_best, int(k_best), seed=seed), results
