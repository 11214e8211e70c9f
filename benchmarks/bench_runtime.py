"""The runtime's speed, side by side with the same network in PyTorch eager: one table.

    .venv/bin/python benchmarks/bench_runtime.py [--model DIR] [--out docs/...md]
        [edge-asd bench options: --threads 2 --batch-sizes 1,4,16 --calls 10 ...]

Without --model, a random-weight ST-gram + MobileFaceNet is made (train.synthetic) and
exported, so PyTorch eager runs exactly the model onnxruntime runs. With --model, PyTorch
runs the same architecture (model.yaml's sizes) with random weights: the speed of a
network does not depend on its weights. Everything else is `edge-asd bench` (see
edge_asd/bench/suite.py): the engines, then the daemon end to end with a real mosquitto.
Needs the `train` extra (torch); edge_asd itself never imports torch.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

# PyTorch's OpenMP threads spin between parallel regions by default: in one process with
# the other engines they would burn the cores those engines are being timed on (and
# count in their CPU time), as onnxruntime's would, which edge-asd turns off.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from edge_asd.bench.latency import Subject  # noqa: E402
from edge_asd.bench.suite import run_suite  # noqa: E402
from edge_asd.commands.bench import (  # noqa: E402
    add_options,
    command_line,
    options_from_args,
    progress,
    work_dir,
    write_report,
)
from edge_asd.model_file import load_model_info  # noqa: E402

TORCH = "PyTorch eager"


def torch_model(model_dir: Path, seed: int):
    """The network in PyTorch (eval mode): the exported one when `model_dir` was made by
    `export_random_model(seed)`, otherwise the same architecture with random weights."""
    from train.model import ASDModel, ModelConfig
    from train.synthetic import random_model

    info = load_model_info(model_dir)
    features, backbone = info.backbone.split("+")
    config = ModelConfig(
        backbone=backbone,
        features=features,
        embedding_dim=info.embedding_dim,
        window_samples=info.window_samples,
        sample_rate=info.sample_rate,
        n_fft=info.front_end.n_fft,
        hop_length=info.front_end.hop_length,
        n_mels=info.front_end.n_mels,
    )
    if info.trained_on.get("seed") == seed and "random" in str(info.trained_on.get("data")):
        return random_model(info.labels, config, seed)
    return ASDModel(config, len(info.labels)).eval()


def torch_subject(model_dir: Path, threads: int, seed: int = 0) -> Subject:
    torch.set_num_threads(threads)
    network = torch_model(model_dir, seed)

    def run(windows: np.ndarray, end_frames: np.ndarray) -> None:
        with torch.inference_mode():
            network(torch.from_numpy(windows))

    return Subject(TORCH, run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model directory (default: a random-weight export)")
    add_options(parser)
    args = parser.parse_args()
    options = options_from_args(args)
    command = command_line(".venv/bin/python benchmarks/bench_runtime.py", args)
    with work_dir(args.work) as work:
        model = Path(args.model) if args.model else None
        if model is None:
            from train.synthetic import export_random_model

            progress("exporting a random-weight model (seed 0)")
            model = export_random_model(work / "model", seed=0)
        subject = torch_subject(model, args.threads)
        result = run_suite(
            model,
            work,
            options,
            extra_subjects=[subject],
            reference=TORCH,
            progress=progress,
            command=command,
        )
    write_report(result.text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
