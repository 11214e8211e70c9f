"""What the scorers see of a window: the engine's outputs, reduced to a few kB per window.

Every scorer (edge_asd.scoring.registry) scores `WindowFeatures`, and every command makes
them with `window_features` from the engine's outputs: the daemon per hop, `score` and
`calibrate` per batch of a streamed recording. So a calibration's honest scores, the
offline scores and the daemon's published scores of the same audio come from the same
numbers through the same code.

- `embedding` [B, D] and `logits` [B, L]: the network's outputs, float32 as it gives them;
- `pooled` [B, n_r, n_mels]: the log-mel pooled over time by global weighted ranking
  (GWRP: Kolesnikov and Lampert, ECCV 2016, for weakly supervised segmentation; TWFR-GMM,
  Guan et al., ICASSP 2023, for anomalous sound) at each decay r of POOLING_R: r = 0 is
  the max over time (keeps transients such as clicks), r = 1 the mean (keeps steady tones
  and the spectral balance). The log-mel itself (160 kB a window) is not kept.

The window's level is read from the mean pooling: `level_db` [B] is the mean log-mel over
bands and frames, `band_levels_db` [B, n_bands] the same per group of mel bands. Both
shift by exactly g dB when the input's gain changes by g dB (well above the front end's
floor), so a level offset between calibration and now is their difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_asd.engines.base import EngineOutput

POOLING_R = (0.0, 0.5, 0.9, 0.98, 1.0)  # GWRP decays kept per window; 1.0 must be there
MEAN_POOLING = POOLING_R.index(1.0)
N_LEVEL_BANDS = 8  # mel bands grouped for the per-band level


def gwrp_weights(r_values: Sequence[float], n_frames: int) -> np.ndarray:
    """GWRP weights [n_r, n_frames]: the k-th largest value weighted r**k, normalised."""
    frames = np.arange(n_frames, dtype=np.float64)
    weights = np.stack([np.power(float(r), frames) for r in r_values])  # 0**0 == 1
    return weights / weights.sum(axis=1, keepdims=True)


def pool(logmel: np.ndarray, r_values: Sequence[float] = POOLING_R) -> np.ndarray:
    """GWRP over time at every r, sorting once: [B, n_mels, frames] -> float32 [B, n_r, n_mels]."""
    ranked = -np.sort(-np.asarray(logmel, dtype=np.float32), axis=-1)  # descending
    weights = gwrp_weights(r_values, ranked.shape[-1]).astype(np.float32)
    return np.einsum("bmf,rf->brm", ranked, weights, dtype=np.float32)


@dataclass(frozen=True)
class WindowFeatures:
    """A batch of windows as the scorers see them (see the module): B rows in each array."""

    embedding: np.ndarray  # float32 [B, D]
    logits: np.ndarray  # float32 [B, L]
    pooled: np.ndarray  # float32 [B, len(POOLING_R), n_mels]

    def __len__(self) -> int:
        return len(self.embedding)

    @property
    def level_db(self) -> np.ndarray:
        """Mean log-mel over bands and frames, float64 [B] (dB, the front end's reference)."""
        return self.pooled[:, MEAN_POOLING].mean(axis=1, dtype=np.float64)

    @property
    def band_levels_db(self) -> np.ndarray:
        """Mean log-mel of N_LEVEL_BANDS groups of mel bands, float64 [B, N_LEVEL_BANDS]."""
        groups = np.array_split(self.pooled[:, MEAN_POOLING].astype(np.float64), N_LEVEL_BANDS, 1)
        return np.stack([g.mean(axis=1) for g in groups], axis=1)

    def take(self, rows: np.ndarray | slice) -> WindowFeatures:
        """The rows `rows` (a boolean mask, indices or a slice) as features of their own."""
        return WindowFeatures(self.embedding[rows], self.logits[rows], self.pooled[rows])

    @classmethod
    def concat(cls, parts: Sequence[WindowFeatures]) -> WindowFeatures:
        """The rows of every part, in order; ValueError when there is no part."""
        if not parts:
            raise ValueError("no features to concatenate")
        return cls(
            np.concatenate([p.embedding for p in parts]),
            np.concatenate([p.logits for p in parts]),
            np.concatenate([p.pooled for p in parts]),
        )


def window_features(output: EngineOutput) -> WindowFeatures:
    """The features of a batch of engine outputs; ValueError when the logmel is missing."""
    if output.logmel is None:
        raise ValueError("the engine gave no logmel output, which the scorers need")
    return WindowFeatures(
        np.asarray(output.embedding, dtype=np.float32),
        np.asarray(output.logits, dtype=np.float32),
        pool(output.logmel),
    )
