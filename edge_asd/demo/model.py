"""The demo model: trained once on generated machine sound by `edge-asd-train`, then cached.

The runtime never imports torch, so training runs as a subprocess of the training command
(the `train` extra, which scripts/setup.sh installs); its progress bar shows through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from edge_asd.errors import EXIT_RUNTIME, UserError
from edge_asd.model_file import MODEL_ONNX, MODEL_YAML

# Bump when the demo's training recipe, generator or model bundle changes (v2: the bundle
# holds the split graphs, derived at export).
DEMO_MODEL_VERSION = "v2"


def default_cache_dir() -> Path:
    """$EDGE_ASD_CACHE, else $XDG_CACHE_HOME/edge-asd, else ~/.cache/edge-asd."""
    if os.environ.get("EDGE_ASD_CACHE"):
        return Path(os.environ["EDGE_ASD_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edge-asd"


def cached_model_dir(cache_dir: Path) -> Path:
    return cache_dir / f"demo-model-{DEMO_MODEL_VERSION}"


def ensure_demo_model(cache_dir: Path, machine_type: str, threads: int | None = None) -> Path:
    """The cached demo model directory, training it first when it is not there yet.

    Raises UserError when the training extra (torch) is not installed or training fails.
    """
    target = cached_model_dir(cache_dir)
    if (target / MODEL_ONNX).is_file() and (target / MODEL_YAML).is_file():
        print(f"demo model: {target} (cached; delete it to train again)")
        return target
    work = cache_dir / f"demo-train-{DEMO_MODEL_VERSION}"
    shutil.rmtree(work, ignore_errors=True)
    command = [sys.executable, "-m", "train.cli", "synthetic", "--out", str(work)]
    command += ["--machine-type", machine_type]
    if threads:
        command += ["--threads", str(threads)]
    print("demo model: training on generated machine sound (a few minutes on 2 CPU cores) ...")
    try:
        result = subprocess.run(command, check=False)
    except OSError as exc:
        raise UserError(f"cannot start the training command: {exc}", EXIT_RUNTIME) from None
    if result.returncode != 0:
        raise UserError(
            f"training the demo model failed (exit {result.returncode}); it needs the train "
            "extra (torch): run scripts/setup.sh, or pass --model DIR",
            EXIT_RUNTIME,
        )
    trained = work / "run" / "model"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(trained, target)
    return target
