"""The model's split for speed, as the runtime reads it from the model directory.

`model.onnx` (the contract) runs its whole front end on every window, although a 10 s
window at a 1 s hop shares 90 % of its audio with the window before. Everything before
the Tgram's LayerNorm is frame-local, so the export (train/split.py) also writes model.onnx
split in two graphs, checked against it, beside it in the model directory:

- `split-columns.onnx`: power spectra [N, n_bins] -> log-mel columns [N, n_mels], and
  frames [N, n_fft] -> the Tgram's first-conv columns [N, C] (the graph's own mel matrix
  and Tgram kernels; the DFT itself is an FFT done by the front end, with the analysis
  window `split-window.npy` read from the graph's DFT kernels);
- `split-network.onnx`: the rest of model.onnx, from the `logmel` tensor (and the
  Tgram's first-conv output) to `embedding` and `logits`, PRelu rewritten for speed.

model.yaml's `split:` names the files with their sha256 (edge_asd.model_file.SplitInfo).
Reading them needs neither the `onnx` package nor anything of train/.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np

from edge_asd.errors import ModelFileError
from edge_asd.model_file import ModelInfo

# What the split's files mean (the columns graph's names, the front end around it).
# train/split.py writes this derivation; bump both on any change of the files' meaning.
DERIVATION = 2
SPLIT_FILES = {
    "network": "split-network.onnx",
    "columns": "split-columns.onnx",
    "window": "split-window.npy",
}
POWER, FRAMES = "power", "frames"  # the columns graph's inputs
LOGMEL_COLUMNS, TGRAM_COLUMNS = "logmel_columns", "tgram_columns"  # and its outputs


class SplitUnavailable(Exception):
    """A split this runtime cannot use (made by another derivation); says why."""


@dataclass(frozen=True)
class SplitModel:
    """The two graphs and what the front end around them needs.

    window: float32 [n_fft], the analysis window of the log-mel's DFT; logmel_input and
    tgram_input: the network's inputs (tgram_input None for a log-mel-only model).
    """

    network: bytes
    columns: bytes
    window: np.ndarray
    logmel_input: str
    tgram_input: str | None


def load_split(info: ModelInfo) -> SplitModel:
    """The split model.yaml names, read from the model directory.

    Raises ModelFileError naming the file when one is missing, unreadable or not the
    recorded sha256 (or the window is not float32 [n_fft]), or when the split was made
    from another model.onnx than model.yaml's; SplitUnavailable when the
    split was made by a derivation this runtime does not read. `info.split` must be set.
    """
    split = info.split
    if split is None:
        raise ValueError(f"{info.onnx_path}: model.yaml has no split")
    if split.onnx_sha256 != info.onnx_sha256:
        raise ModelFileError(
            f"{info.directory / 'model.yaml'}: its split was made from another model.onnx "
            f"(sha256 {split.onnx_sha256[:12]}…, not {info.onnx_sha256[:12]}…); make it again "
            f"with `edge-asd-train split --model {info.directory}`"
        )
    if split.derivation != DERIVATION:
        raise SplitUnavailable(
            f"its split was made by derivation {split.derivation}; this edge-asd reads {DERIVATION}"
        )
    data = {
        name: _read_checked(info, name, entry.file, entry.sha256)
        for name, entry in split.files().items()
    }
    window_path = info.directory / split.window.file
    try:
        window = np.load(io.BytesIO(data["window"]), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ModelFileError(f"{window_path}: not a numpy array file ({exc})") from None
    if window.dtype != np.float32 or window.shape != (info.front_end.n_fft,):
        raise ModelFileError(
            f"{window_path}: holds {window.dtype} {list(window.shape)}, but the front end "
            f"needs float32 [{info.front_end.n_fft}] (n_fft in model.yaml)"
        )
    return SplitModel(
        network=data["network"],
        columns=data["columns"],
        window=window,
        logmel_input=split.logmel_input,
        tgram_input=split.tgram_input,
    )


def _read_checked(info: ModelInfo, name: str, file: str, sha256: str) -> bytes:
    path = info.directory / file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(
            f"{path}: cannot read the split's {name} file ({exc.strerror or exc}); "
            f"model.yaml's `split:` names it"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelFileError(
            f"{path}: sha256 {actual[:12]}… does not match model.yaml's split "
            f"({sha256[:12]}…): the file was changed or comes from another export; make "
            f"the split again with `edge-asd-train split --model {info.directory}`"
        )
    return data
