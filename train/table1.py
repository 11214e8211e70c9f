"""`edge-asd-train table1`: the report's Table 1 on a DCASE root, beside the report's numbers.

For each recipe (configs/train/<recipe>.yaml, one per row of the table): fit one model per
machine type (the `section` scheme), evaluate with the `section` scorer (the report's),
then print each type's harmonic means over sections next to the numbers the recipe's
`reference` key copies from the report. Writes OUT/<recipe>/ (runs and evaluations) and
OUT/table1.json, OUT/table1.txt.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_asd.errors import UserError

RECIPES = ("mobilenetv2_logmel", "stgram_mobilenetv3", "stgram_mobilefacenet")
RECIPE_DIR = Path(__file__).resolve().parents[1] / "configs" / "train"


def run_table1(
    data_root: str | Path,
    out_dir: str | Path,
    recipes: Sequence[str] = RECIPES,
    recipe_dir: str | Path = RECIPE_DIR,
    machine_types: Sequence[str] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate every recipe; returns {"results": {recipe: summary}, "text"}."""
    from train.config import load_config
    from train.evaluate import evaluate_run
    from train.fit import fit
    from train.report import table, write_report

    out_dir = Path(out_dir)
    results: dict[str, Any] = {}
    texts = []
    for recipe in recipes:
        path = Path(recipe_dir) / f"{recipe}.yaml"
        if not path.is_file():
            raise UserError(f"{path}: no such recipe (recipes: {', '.join(RECIPES)})")
        config = load_config(path).with_overrides(epochs=epochs, batch_size=batch_size)
        config = config.with_overrides(labels="section")  # the report: one model per type
        run_dir = out_dir / recipe
        resume = (run_dir / "checkpoint.pt").exists() or any(run_dir.glob("*/checkpoint.pt"))
        fit(data_root, run_dir, config, machine_types, device, resume=resume, progress=progress)
        sections = evaluate_run(data_root, run_dir, scorer="section")
        summary = write_report(sections, run_dir / "eval_section")
        results[recipe] = summary
        texts.append(f"== {recipe} ({config.epochs} epochs)\n{table(summary, config.reference)}")
    text = "\n\n".join(texts)
    (out_dir / "table1.txt").write_text(text + "\n")
    (out_dir / "table1.json").write_text(json.dumps(results, indent=2) + "\n")
    return {"results": results, "text": text}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "table1", help="train + evaluate the report's three Table 1 rows on a DCASE root"
    )
    p.add_argument("--data", required=True, help="DCASE 2022 root (all its machine types)")
    p.add_argument("--out", required=True, help="directory for the runs and the table")
    p.add_argument(
        "--recipe",
        action="append",
        dest="recipes",
        choices=RECIPES,
        help="only this row (repeat for several; default all three)",
    )
    p.add_argument("--recipe-dir", default=str(RECIPE_DIR), help="where the recipes lie")
    p.add_argument("--machine-type", action="append", dest="machine_types", metavar="TYPE")
    p.add_argument("--epochs", type=int, help="override the recipes' 200 epochs")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outcome = run_table1(
        args.data,
        args.out,
        args.recipes or RECIPES,
        args.recipe_dir,
        args.machine_types,
        args.epochs,
        args.batch_size,
        args.device,
        progress=not args.quiet,
    )
    print(outcome["text"])
    print(f"results in {args.out}")
    return 0
