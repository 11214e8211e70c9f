"""Export a trained model as the model file: `model.onnx` + `model.yaml` (edge_asd.model_file),
and model.onnx's split for speed beside them (train/split.py).

The graph takes `waveform` float32 [batch, window_samples] (batch dynamic, everything else
static) and returns `embedding`, `logits` (scaled cosine, no margin) and `logmel`. The
export checks its own result with edge_asd.engines.trt_ops (only operators TensorRT 10's
ONNX parser imports, no dynamic axis but the batch) and refuses a graph that fails. The
split is derived once here, checked against model.onnx and recorded in model.yaml, so
that every command runs the same graph without deriving anything at run time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from edge_asd.engines.split_graph import SplitUnavailable
from edge_asd.engines.trt_ops import require_tensorrt_ready
from edge_asd.errors import ModelFileError
from edge_asd.logs import library_noise_filtered
from edge_asd.model_file import (
    FORMAT_VERSION,
    INPUT_NAME,
    MODEL_ONNX,
    MODEL_YAML,
    OUTPUT_NAMES,
    ModelInfo,
    sha256_of,
    write_model_info,
)
from train.model import ASDModel
from train.split import add_split

OPSET = 18  # LayerNormalization needs 17; TensorRT 10.3 (JetPack 6) reads up to 20
BATCH_DIM = "batch"

log = logging.getLogger(__name__)

# What the exporter tells its own developers, filtered around our call only (one DEBUG
# line lists it): the registry's notes on torchvision ops it skips (torchvision is not a
# dependency), its optimiser's INFO line per pass, and FutureWarnings torch raises against
# its own internals (edge_asd.logs.LIBRARY_DEPRECATIONS). Errors, and its other warnings,
# still show.
EXPORTER_NOISE = {
    "torch.onnx._internal.exporter._registration": logging.ERROR,
    "onnxscript": logging.WARNING,
    "onnx_ir": logging.WARNING,
}


def export_onnx(model: ASDModel, onnx_path: str | os.PathLike) -> Path:
    """Write the graph of `model` (on the CPU, eval mode) to `onnx_path`; returns the path."""
    import copy

    onnx_path = Path(onnx_path)
    model = copy.deepcopy(model).cpu().eval()
    window_samples = model.config.window_samples
    example = torch.zeros(2, window_samples)  # batch 2: torch.export specialises 1
    batch = torch.export.Dim(BATCH_DIM, min=1, max=4096)
    tmp = onnx_path.with_suffix(".onnx.tmp")
    # the exporter prints its progress on stdout; a training log does not need it
    with (
        contextlib.redirect_stdout(io.StringIO()),
        library_noise_filtered("torch.onnx.export", EXPORTER_NOISE, log=log),
    ):
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={INPUT_NAME: {0: batch}},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
        )
    try:
        require_tensorrt_ready(tmp)
    except ModelFileError:
        tmp.unlink()
        raise
    os.replace(tmp, onnx_path)
    return onnx_path


def export_model_dir(
    model: ASDModel,
    labels: Sequence[str],
    out_dir: str | os.PathLike,
    label_scheme: str,
    trained_on: dict[str, Any] | None = None,
) -> Path:
    """Write `model.onnx`, `model.yaml` (with the ONNX sha256) and the split into `out_dir`;
    returns it.

    A model that cannot be split (or whose split does not match model.onnx) is exported
    without one, with a warning saying why: the runtime then runs model.onnx as it is.
    Raises ValueError when the number of labels is not the model's.
    """
    if len(labels) != model.n_labels:
        raise ValueError(f"{len(labels)} labels for a model with {model.n_labels} outputs")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, out_dir / MODEL_ONNX)
    config = model.config
    info = ModelInfo(
        format_version=FORMAT_VERSION,
        sample_rate=config.sample_rate,
        window_samples=config.window_samples,
        embedding_dim=config.embedding_dim,
        labels=tuple(labels),
        front_end=config.front_end(),
        backbone=config.name,
        label_scheme=label_scheme,
        onnx_sha256=sha256_of(onnx_path),
        trained_on=dict(trained_on or {}),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    write_model_info(info, out_dir / MODEL_YAML)
    try:
        add_split(out_dir)
    except SplitUnavailable as exc:
        log.warning("%s: exported without a split model (slower at run time): %s", out_dir, exc)
    return out_dir
