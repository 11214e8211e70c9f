"""`edge-asd bench`: one table of every engine at every batch size, the machine, the
targets met or missed, and the command that reproduces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_asd.bench.daemon import DaemonResult
from edge_asd.bench.latency import LatencyResult
from edge_asd.bench.report import daemon_targets, latency_ratio_target, table, targets_text
from edge_asd.bench.suite import PLAIN, SPLIT, STOCK, STREAM, STREAM_ONE_AT_A_TIME, TENSORRT
from edge_asd.cli import main
from tests.harness.gpu import TENSORRT_RUNS


def test_bench_prints_one_table_of_every_engine_at_every_batch_size(
    tiny_model: Path, tmp_path: Path, capsys
):
    out = tmp_path / "bench.md"
    code = main(
        ["bench", "--model", str(tiny_model), "--no-daemon", "--calls", "2",
         "--batch-sizes", "1,2", "--out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert out.read_text() == printed
    rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| what | batch | p50 ms | p95 ms | ms/window | windows/s")
    for label in (STOCK, PLAIN, SPLIT, STREAM, STREAM_ONE_AT_A_TIME):
        for batch in (1, 2):
            (row,) = [r for r in rows if r.startswith(f"| {label} | {batch} |")]
            p50, p95, per_window, rate, cpu = (float(cell) for cell in row.split(" | ")[2:7])
            assert 0 < p50 <= p95 and per_window == pytest.approx(p50 / batch, abs=0.06)
            assert rate > 0 and cpu > 0
    assert "CPU: " in printed and "load average" in printed and "onnxruntime " in printed
    assert f"Reproduce: `edge-asd bench --model {tiny_model}" in printed
    assert "--no-daemon" in printed


def bench_rows(model: Path, capsys) -> tuple[list[str], str]:
    """(the table's rows, everything printed) of `edge-asd bench` at batches 1 and 2."""
    code = main(["bench", "--model", str(model), "--no-daemon", "--calls", "2",
                 "--batch-sizes", "1,2"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    return [line for line in printed.splitlines() if line.startswith("| ")], printed


@pytest.mark.skipif(TENSORRT_RUNS, reason="TensorRT runs here")
def test_bench_without_tensorrt_says_why_it_was_not_measured(tiny_model: Path, capsys):
    rows, printed = bench_rows(tiny_model, capsys)
    assert "TensorRT not measured: the tensorrt engine cannot run here: " in printed
    assert not any(r.startswith(f"| {TENSORRT} |") for r in rows)


@pytest.mark.gpu
@pytest.mark.skipif(not TENSORRT_RUNS, reason="needs TensorRT 10 and a CUDA GPU")
def test_bench_with_tensorrt_measures_it_at_every_batch_size(tiny_model: Path, capsys):
    rows, printed = bench_rows(tiny_model, capsys)
    assert "TensorRT not measured" not in printed
    for batch in (1, 2):
        (row,) = [r for r in rows if r.startswith(f"| {TENSORRT} | {batch} |")]
        p50, p95 = (float(cell) for cell in row.split(" | ")[2:4])
        assert 0 < p50 <= p95


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--batch-sizes", "1,x"], "--batch-sizes '1,x'"),
        (["--batch-sizes", "0"], "positive integers"),
        (["--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_bench_refuses_unusable_options(tiny_model, capsys, arguments, message):
    code = main(["bench", "--model", str(tiny_model), "--no-daemon", *arguments])
    assert code == 2
    assert message in capsys.readouterr().err


def test_bench_of_a_missing_model_says_which(tmp_path, capsys):
    assert main(["bench", "--model", str(tmp_path / "nowhere"), "--no-daemon"]) == 3
    assert f"{tmp_path}/nowhere: no such model directory or file" in capsys.readouterr().err


def daemon_result(label: str, **values) -> DaemonResult:
    base = dict(
        windows=100,
        windows_per_second=50.0,
        first_score_seconds=1.2,
        peak_rss_mb=140.0,
        steady_rss_mb=120.0,
        cpu_share=0.2,
        cores=2,
        exit_code=0,
    )
    return DaemonResult(label=label, **{**base, **values})


def test_targets_say_met_or_missed_with_what_was_measured():
    latency = [
        LatencyResult("torch", 1, 40.0, 45.0, 25.0, 5),
        LatencyResult(SPLIT, 1, 15.0, 16.0, 66.0, 5),
        LatencyResult(STREAM, 1, 25.0, 26.0, 40.0, 5),
    ]
    assert latency_ratio_target(latency, SPLIT, "torch").met
    assert not latency_ratio_target(latency, STREAM, "torch").met
    assert latency_ratio_target(latency, SPLIT, "absent") is None
    fast = daemon_result("fast", windows_per_second=120.0, steady_rss_mb=160.0)
    live = daemon_result("live", cpu_share=0.6, first_score_seconds=11.0)
    text = targets_text(daemon_targets(fast, live))
    assert "- met: one channel from a file, hop 1 s: ≥ 100 windows/s: 120.0 windows/s" in text
    assert "- MISSED: 8 channels in real time: < 50 % of 2 cores: 60 %" in text
    assert "- MISSED: steady RSS < 150 MB (fast): 160 MB" in text
    assert "- met: steady RSS < 150 MB (live): 120 MB" in text
    assert "- met: start to first score < 3 s: 1.20 s" in text


def test_table_has_a_row_per_result_and_marks_what_does_not_apply():
    rows = table(
        [LatencyResult(SPLIT, 4, 80.0, 90.0, 50.0, 3)],
        [daemon_result("daemon", cpu_share=None, cpu_ms_per_window=9.0)],
    ).splitlines()
    assert len(rows) == 4
    assert rows[2] == f"| {SPLIT} | 4 | 80.0 | 90.0 | 20.0 | 50.0 | – | – | – | – | – |"
    assert rows[3] == "| daemon | – | – | – | – | 50.0 | 9.0 | – | 140 | 120 | 1.20 |"


def test_bench_of_a_model_without_a_split_says_how_to_add_it(tiny_model, tmp_path, capsys):
    import shutil

    import yaml

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    data = yaml.safe_load((model / "model.yaml").read_text())
    data.pop("split")
    (model / "model.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    code = main(["bench", "--model", str(model), "--no-daemon", "--calls", "1",
                 "--batch-sizes", "1", "--no-tensorrt"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert f"split rows not measured: {model} has no split model" in printed
    assert f"edge-asd-train split --model {model}" in printed
    assert not any(line.startswith(f"| {SPLIT}") for line in printed.splitlines())
