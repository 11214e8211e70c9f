"""Offline scoring of long recordings: peak memory and speed, beside PyTorch eager, one table.

    .venv/bin/python benchmarks/bench_offline.py [--model DIR] [--work DIR] [--threads 2]
        [--hours-short 2] [--hours-long 24] [--eager-windows 200]

Generates two recordings of machine sound (edge_asd.synth: ten minutes rendered once,
written end to end as 16-bit WAV), calibrates on four minutes of other generated sound
(`edge-asd calibrate`, defaults), and runs `edge-asd score --json` as a user would: on the
short recording at a 1 s hop and on the long one at a 10 s hop. Each run is its own
process; its peak resident memory is the kernel's (`ru_maxrss` of that process alone) and
its speed is windows / wall seconds, start-up included. `edge-asd calibrate` with its
defaults is timed the same way on 20 minutes of generated normal sound. PyTorch eager runs the same
network (same architecture; the speed of a network does not depend on its weights) on
windows of the short recording, batch 8, on the same threads, in this process. Prints a
markdown table with the ratios. Needs the `train` extra (torch) for the eager column.

Without --model, a random-weight model is exported first (train.synthetic).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_runtime.py

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from edge_asd.audio import SAMPLE_RATE  # noqa: E402
from edge_asd.synth import render_clip, write_wav  # noqa: E402

EDGE_ASD = REPO_ROOT / ".venv" / "bin" / "edge-asd"
TILE_SECONDS = 600.0
# Runs argv[2:] with its stdout into the file argv[1]; prints wall s, that process's own
# peak RSS in kB (os.wait4: its rusage alone; a fork keeps the parent's high-water mark
# through exec, so the command is started from this small process, never from the
# benchmark's own, which has just generated hours of audio), and its exit status.
MEASURE = (
    "import os, subprocess, sys, time; t = time.monotonic(); "
    "child = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1], 'w')); "
    "_, status, usage = os.wait4(child.pid, 0); "
    "print(time.monotonic() - t, usage.ru_maxrss, os.waitstatus_to_exitcode(status))"
)


def long_recording(path: Path, hours: float) -> Path:
    """`hours` of generated fan sound at 16 kHz, 16-bit (a tile of TILE_SECONDS repeated)."""
    import soundfile

    if path.exists():
        return path
    tile = render_clip("fan", 0, "source", TILE_SECONDS, seed=11)
    pcm = np.round(np.clip(tile, -1, 1) * 32767).astype("<i2")
    total = round(hours * 3600 * SAMPLE_RATE)
    with soundfile.SoundFile(path, "w", SAMPLE_RATE, 1, "PCM_16") as out:
        written = 0
        while written < total:
            part = pcm[: total - written]
            out.write(part)
            written += len(part)
    return path


def calibrate(model: Path, work: Path) -> Path:
    """The default calibration on 4 x 60 s of other generated normal sound."""
    folder = work / "normal"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        write_wav(folder / f"n{i}.wav", render_clip("fan", 0, "source", 60.0, seed=200 + i))
    out = work / "calibration.yaml"
    command = [str(EDGE_ASD), "calibrate", "--model", str(model), "--machine", "bench"]
    command += ["--input", str(folder), "--quantile", "0.99", "--out", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return out


def measure_calibrate(model: Path, work: Path, minutes: float, threads: int) -> dict:
    """`edge-asd calibrate` (defaults: auto, 1 false alarm a day) on `minutes` of generated
    normal sound in 4 recordings: wall seconds, peak RSS (MB), windows."""
    folder = work / f"normal_{minutes:g}min"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        path = folder / f"n{i}.wav"
        if not path.exists():
            write_wav(path, render_clip("fan", 0, "source", minutes * 15.0, seed=300 + i))
    out = work / f"calibration_{minutes:g}min.yaml"
    command = [str(EDGE_ASD), "calibrate", "--model", str(model), "--machine", "bench"]
    command += ["--input", str(folder), "--threads", str(threads), "--out", str(out)]
    measured = measure_process(command, work / "calibrate.log")
    import yaml

    return {**measured, "windows": yaml.safe_load(out.read_text())["n_windows"]}


def measure_score(model: Path, calibration: Path, path: Path, hop: float, threads: int) -> dict:
    """One `edge-asd score` process: wall seconds, peak RSS (MB), windows."""
    command = [str(EDGE_ASD), "score", "--model", str(model), "--calibration", str(calibration)]
    command += ["--hop-seconds", str(hop), "--threads", str(threads), "--json", str(path)]
    output = path.with_suffix(".json")
    measured = measure_process(command, output)
    return {**measured, "windows": json.loads(output.read_text().splitlines()[-1])["windows"]}


def measure_process(command: list[str], output: Path) -> dict:
    """Run `command` (its stdout to `output`) under MEASURE: wall seconds and
    peak RSS (MB); SystemExit naming the command and `output` when it fails."""
    probe = subprocess.run(
        [sys.executable, "-c", MEASURE, str(output), *command],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds, rss_kb, code = probe.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"edge-asd {command[1]} failed ({code}); see {output}")
    return {"seconds": float(seconds), "rss_mb": int(rss_kb) / 1024}


def eager_rate(model: Path, recording: Path, windows: int, threads: int) -> float:
    """PyTorch eager windows/s on the first `windows` windows of `recording`, batch 8."""
    import torch
    from bench_runtime import torch_model

    from edge_asd.recording import stream_windows

    torch.set_num_threads(threads)
    network = torch_model(model, seed=0)
    batches = stream_windows([recording], window_samples=160000, hop_samples=SAMPLE_RATE)
    done, started = 0, time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            network(torch.from_numpy(batch.waveforms))
            done += len(batch)
            if done >= windows:
                break
    return done / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge_asd_bench_offline"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hours-short", type=float, default=2.0)
    parser.add_argument("--hours-long", type=float, default=24.0)
    parser.add_argument("--eager-windows", type=int, default=200)
    parser.add_argument("--calibrate-minutes", type=float, default=20.0)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from train.synthetic import export_random_model

        model = args.work / "model"
        if not (model / "model.yaml").exists():
            export_random_model(model, ("fan/section_00", "fan/section_01"))
    calibration = calibrate(model, args.work)
    short = long_recording(args.work / f"short_{args.hours_short:g}h.wav", args.hours_short)
    long = long_recording(args.work / f"long_{args.hours_long:g}h.wav", args.hours_long)
    rows = [
        (
            f"{args.hours_short:g} h, hop 1 s",
            measure_score(model, calibration, short, 1.0, args.threads),
        ),
        (
            f"{args.hours_long:g} h, hop 10 s",
            measure_score(model, calibration, long, 10.0, args.threads),
        ),
    ]
    calibrated = measure_calibrate(model, args.work, args.calibrate_minutes, args.threads)
    eager = eager_rate(model, short, args.eager_windows, args.threads)
    print(
        f"model {model}; {args.threads} threads; PyTorch eager {eager:.1f} windows/s "
        f"({args.eager_windows} windows of the short recording, batch 8)"
    )
    print("| recording | windows | wall s | windows/s | x eager | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        rate = r["windows"] / r["seconds"]
        print(
            f"| {name} | {r['windows']} | {r['seconds']:.1f} | {rate:.1f} | "
            f"{rate / eager:.2f} | {r['rss_mb']:.0f} |"
        )
    c = calibrated
    print(
        f"\n`edge-asd calibrate` (defaults) on {args.calibrate_minutes:g} min of generated "
        f"normal sound in 4 recordings: {c['windows']} windows, {c['seconds']:.0f} s wall "
        f"(the synthetic faults included), peak RSS {c['rss_mb']:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
