"""`edge-asd-train`: fit, evaluate and export models (the training side of edge-asd).

    edge-asd-train fit --data ROOT --out RUN [--config RECIPE] [--machine-type T ...]
                       [--labels SCHEME] [--pseudo-labels auto|on|off] [--epochs N]
                       [--device cpu|cuda] [--resume]
    edge-asd-train evaluate --data ROOT --run RUN [--scorer section|knn|twfr|knn+twfr|...]
    edge-asd-train export --run RUN
    edge-asd-train split --model DIR      add the split for speed to a model directory
    edge-asd-train table1 --data ROOT --out DIR [--epochs N]
    edge-asd-train synthetic --out WORK [--machine-type T] [--sections 0 1 2]

Several GPUs: `torchrun --nproc_per_node N -m train.cli fit ...` (DDP). A UserError
becomes one line on stderr and its exit code; anything else keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from edge_asd.cli import dispatch, verbose_after_the_command
from edge_asd.errors import UserError

COMMANDS = ("fit", "evaluate", "export", "table1")


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def register_fit(subparsers) -> None:
    p = subparsers.add_parser("fit", help="train on the normal train/ clips of a DCASE tree")
    p.add_argument("--data", required=True, help="DCASE 2022 root: <root>/<type>/train/*.wav")
    p.add_argument("--out", required=True, help="run directory (checkpoints, log, model/)")
    p.add_argument("--config", help="recipe YAML, e.g. configs/train/stgram_mobilefacenet.yaml")
    p.add_argument(
        "--machine-type",
        action="append",
        dest="machine_types",
        metavar="TYPE",
        help="train on this machine type (repeat for several; default: all)",
    )
    p.add_argument("--labels", choices=("section", "type_section", "section_attribute"))
    p.add_argument(
        "--pseudo-labels",
        choices=("auto", "on", "off"),
        help="self-supervised classes (each label x a transform of the sound): auto (the "
        "recipe's default) when fewer than 2 metadata labels, on, or off",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--short-clips",
        choices=("tile", "pad", "join"),
        help="clips shorter than the window: repeat, pad with silence, or join "
        "a recording's clips (with --join-key)",
    )
    p.add_argument("--join-key", help="attribute naming a recording, e.g. rec or flight")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--resume", action="store_true", help="go on from RUN/checkpoint.pt")
    add_common(p)
    p.set_defaults(func=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from train.config import load_config
    from train.fit import fit

    config = load_config(args.config).with_overrides(
        labels=args.labels,
        pseudo_labels=args.pseudo_labels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        short_clips=args.short_clips,
        join_key=args.join_key,
    )
    results = fit(
        args.data,
        args.out,
        config,
        args.machine_types,
        args.device,
        args.resume,
        progress=not args.quiet,
    )
    for r in results:
        loss = "-" if r.train_loss is None else f"{r.train_loss:.4f}"
        print(f"{'+'.join(r.machine_types)}: {r.epochs} epochs, loss {loss}, model {r.model_dir}")
    return 0


def register_export(subparsers) -> None:
    p = subparsers.add_parser("export", help="write RUN/model/ (model.onnx + model.yaml)")
    p.add_argument("--run", required=True, help="run directory written by fit")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from train.checkpoint import CHECKPOINT
    from train.fit import export_run

    run = Path(args.run)
    runs = (
        [run]
        if (run / CHECKPOINT).exists()
        else sorted(p.parent for p in run.glob(f"*/{CHECKPOINT}"))
    )
    if not runs:
        raise UserError(f"{run}: no {CHECKPOINT} here or in its sub-folders")
    for one in runs:
        print(f"exported {export_run(one)}")
    return 0


def register_split(subparsers) -> None:
    p = subparsers.add_parser(
        "split",
        help="add model.onnx's split for speed to a model directory (an older export)",
        description="Derive the split of model.onnx (what `export` writes since splits are "
        "part of the model directory), check it against model.onnx and record it in "
        "model.yaml; model.onnx and its sha256 do not change. Needs the onnx package.",
    )
    p.add_argument("--model", required=True, help="model directory (model.onnx + model.yaml)")
    p.add_argument("--threads", type=int, help="onnxruntime threads for the check")
    p.set_defaults(func=run_split)


def run_split(args: argparse.Namespace) -> int:
    from edge_asd.engines.split_graph import SplitUnavailable
    from train.split import add_split

    try:
        info = add_split(args.model, threads=args.threads)
    except SplitUnavailable as exc:
        raise UserError(f"{args.model}: cannot split this model: {exc}") from None
    differences = ", ".join(f"{k} {v:.2g}" for k, v in info.split.differences.items())
    print(f"split written to {info.directory} (largest differences from model.onnx: {differences})")
    return 0


def register_synthetic(subparsers) -> None:
    p = subparsers.add_parser(
        "synthetic",
        help="generate machine sound and train a quick model on it (the demo's model)",
    )
    p.add_argument("--out", required=True, help="work directory: WORK/data, WORK/run/model")
    p.add_argument("--machine-type", default="fan", help="generated machine type (default fan)")
    p.add_argument("--sections", type=int, nargs="+", default=[0, 1, 2], help="its sections")
    add_common(p)
    p.set_defaults(func=run_synthetic)


def run_synthetic(args: argparse.Namespace) -> int:
    from train.synthetic import train_on_synthetic

    result = train_on_synthetic(
        args.out, (args.machine_type,), tuple(args.sections), progress=not args.quiet
    )
    print(f"model {result.model_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-asd-train", description="Train, evaluate and export edge-asd models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_fit(subparsers)
    register_export(subparsers)
    register_split(subparsers)
    register_synthetic(subparsers)
    for name in ("evaluate_cli", "table1"):  # each module adds its own parser
        importlib.import_module(f"train.{name}").register(subparsers)
    verbose_after_the_command(subparsers)
    return parser


def prepare(args: argparse.Namespace) -> None:
    """Set torch's CPU threads before a command runs (train.export quietens the exporter)."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def main(argv: list[str] | None = None) -> int:
    return dispatch(build_parser(), argv, before_run=prepare)


if __name__ == "__main__":
    sys.exit(main())
