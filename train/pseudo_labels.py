"""Self-supervised pseudo-labels: classes made of altered copies of the normal sound.

ArcFace needs at least two classes. A machine type with one section and no attributes
(every DCASE first-shot type since 2023) has one metadata label, on which the loss is 0
and the weights never move. Pseudo-labels give the network something to learn: every
training window is given one of a few TRANSFORMS, and its class is (metadata label,
transform). Telling the machine's own sound from slightly faster, slower, reversed or
re-coloured copies of it needs the fine spectral and temporal structure that a fault
disturbs; at test time a normal window is confidently "identity", an anomalous one less so.

Label names. The identity class keeps the metadata label (`fan/section_00`, or
`fan/section_00/speed_100`); the others put the transform after the machine type:

    <machine_type>~<transform>/section_XX[/<attributes>]      e.g. fan~faster/section_00

so that a runtime binding (edge_asd.labels.matching_indices: the label itself or a prefix
`binding/`) of `fan/section_00`, or of any attribute label under it, covers the identity
classes only: no pseudo-label starts with `fan/`. The section stays the second part of the
label, so code that reads a label's section keeps working, and `fan~faster` is no machine
type of any DCASE tree.

The transform of an item rotates with the epoch (`(item + epoch) % len(TRANSFORMS)`):
deterministic, balanced, and each window meets every transform across epochs, at the cost
of one window per item as without pseudo-labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edge_asd.audio import SAMPLE_RATE, resample
from edge_asd.errors import EXIT_USAGE, UserError
from train.clip_audio import fit_to_window

log = logging.getLogger(__name__)

SEPARATOR = "~"
IDENTITY = "identity"
SPEED_CHANGE = 0.05  # faster / slower: pitch and tempo by 5 %, a fan's speed step
TILT_COEFFICIENT = 0.5  # tilted: y[n] = x[n] - 0.5 x[n-1], about +10 dB from 0 Hz to 8 kHz
RMS_FLOOR = 1e-8

# (samples of a recording, window_samples, short-clip policy, rng) -> one window float32
Transform = Callable[[np.ndarray, int, str, np.random.Generator], np.ndarray]


def _identity(samples, window_samples, policy, rng) -> np.ndarray:
    return fit_to_window(samples, window_samples, policy, rng)


def _speed(factor: float) -> Transform:
    """Play `factor` times as fast: a crop `factor` windows long, resampled to one window."""
    from_rate = round(SAMPLE_RATE * factor)

    def apply(samples, window_samples, policy, rng) -> np.ndarray:
        span = round(window_samples * from_rate / SAMPLE_RATE)
        played = resample(fit_to_window(samples, span, policy, rng), from_rate, SAMPLE_RATE)
        return fit_to_window(played, window_samples, "pad")  # soxr may end a sample short

    return apply


def _reversed(samples, window_samples, policy, rng) -> np.ndarray:
    return np.ascontiguousarray(_identity(samples, window_samples, policy, rng)[::-1])


def _tilted(samples, window_samples, policy, rng) -> np.ndarray:
    """A first-order high-shelf tilt at the same RMS: the balance of low and high changes."""
    window = _identity(samples, window_samples, policy, rng)
    tilted = window.copy()
    tilted[1:] -= TILT_COEFFICIENT * window[:-1]
    gain = _rms(window) / max(_rms(tilted), RMS_FLOOR)
    return (tilted * gain).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


TRANSFORMS: dict[str, Transform] = {
    IDENTITY: _identity,
    "faster": _speed(1.0 + SPEED_CHANGE),
    "slower": _speed(1.0 - SPEED_CHANGE),
    "reversed": _reversed,
    "tilted": _tilted,
}
DESCRIPTIONS = {
    IDENTITY: "the sound as recorded (keeps the metadata label)",
    "faster": f"played {SPEED_CHANGE:.0%} faster (pitch and tempo up; soxr resampling)",
    "slower": f"played {SPEED_CHANGE:.0%} slower (pitch and tempo down)",
    "reversed": "played backwards",
    "tilted": f"first-order tilt y[n] = x[n] - {TILT_COEFFICIENT} x[n-1], same RMS",
}


def pseudo_label(label: str, transform: str) -> str:
    """The class of `label` under `transform`: `fan~faster/section_00` (identity: `label`)."""
    if transform == IDENTITY:
        return label
    machine_type, _, rest = label.partition("/")
    return f"{machine_type}{SEPARATOR}{transform}/{rest}"


def expand_labels(labels: Sequence[str]) -> list[str]:
    """Every (label, transform) class, sorted (the logits' order)."""
    return sorted(pseudo_label(label, name) for label in labels for name in TRANSFORMS)


def transform_of(item: int, epoch: int) -> str:
    """The transform of dataset item `item` in `epoch`: rotates, so classes stay balanced."""
    names = list(TRANSFORMS)
    return names[(item + epoch) % len(names)]


def transformed_window(
    samples: np.ndarray,
    window_samples: int,
    policy: str,
    rng: np.random.Generator,
    transform: str,
) -> np.ndarray:
    """One window float32 [window_samples] of a recording under `transform`."""
    return TRANSFORMS[transform](samples, window_samples, policy, rng)


def wanted(setting: str, labels: Sequence[str], scheme: str, types: Sequence[str]) -> bool:
    """Whether to train on pseudo-labels: `on`, or `auto` with fewer than 2 metadata labels.

    Raises UserError (exit 2) for `off` with fewer than 2 labels: ArcFace over one class
    has nothing to tell apart, and such a model would be exported untrained.
    """
    few = len(labels) < 2
    if setting == "on" or (setting == "auto" and few):
        if few:
            log.info(
                "%s: %d metadata label under --labels %s: training on pseudo-labels "
                "(label x %d transforms of the sound: %s)",
                "+".join(types), len(labels), scheme, len(TRANSFORMS), ", ".join(TRANSFORMS),
            )  # fmt: skip
        return True
    if few:
        raise UserError(
            f"{'+'.join(types)}: only {len(labels)} label ({', '.join(labels)}) under "
            f"--labels {scheme}, and pseudo_labels is off: ArcFace over one class learns "
            "nothing (its loss is 0 and the weights never change). Use --pseudo-labels auto "
            "(or on), --labels section_attribute when the file names carry attributes, or "
            "--labels type_section with several machine types",
            exit_code=EXIT_USAGE,
        )
    return False


def scheme_record(setting: str, n_metadata_labels: int) -> dict[str, Any]:
    """What model.yaml's `trained_on.pseudo_labels` says about the classes."""
    return {
        "setting": setting,
        "metadata_labels": n_metadata_labels,
        "label_form": f"<machine_type>{SEPARATOR}<transform>/section_XX[/<attributes>]",
        "transforms": dict(DESCRIPTIONS),
        "assignment": "transform of item i in epoch e: (i + e) mod the number of transforms",
    }
