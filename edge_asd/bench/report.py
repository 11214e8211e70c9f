"""The benchmark's one table, the machine it ran on, and the targets of issue 8."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from edge_asd.bench.daemon import DaemonResult
from edge_asd.bench.latency import LatencyResult

COLUMNS = (
    "what",
    "batch",
    "p50 ms",
    "p95 ms",
    "ms/window",
    "windows/s",
    "CPU ms/window",
    "CPU share",
    "peak RSS MB",
    "steady RSS MB",
    "first score s",
)


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def latency_row(result: LatencyResult) -> list[str]:
    return [
        result.label,
        str(result.batch),
        _number(result.p50_ms),
        _number(result.p95_ms),
        _number(result.per_window_ms),
        _number(result.windows_per_second),
        _number(result.cpu_ms_per_window),
        *["–"] * 4,
    ]


def daemon_row(result: DaemonResult) -> list[str]:
    share = None if result.cpu_share is None else 100 * result.cpu_share
    return [
        result.label,
        "–",
        *["–"] * 3,
        _number(result.windows_per_second),
        _number(result.cpu_ms_per_window),
        "–" if share is None else f"{share:.0f} % of {result.cores}",
        _number(result.peak_rss_mb, 0),
        _number(result.steady_rss_mb, 0),
        _number(result.first_score_seconds, 2),
    ]


def table(latency: Sequence[LatencyResult], daemons: Sequence[DaemonResult]) -> str:
    """One Markdown table: engine rows, then daemon rows."""
    rows = [latency_row(r) for r in latency] + [daemon_row(r) for r in daemons]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """One target of the issue, what was measured against it, and whether it is met."""

    name: str
    measured: str
    met: bool


def latency_ratio_target(
    latency: Sequence[LatencyResult], ours: str, reference: str, batch: int = 1
) -> Target | None:
    """`ours`' per-window p50 at most half of `reference`'s (None if either is missing)."""
    found = {r.label: r for r in latency if r.batch == batch}
    if ours not in found or reference not in found:
        return None
    ours_ms, reference_ms = found[ours].per_window_ms, found[reference].per_window_ms
    ratio = ours_ms / reference_ms
    return Target(
        f"{ours}: per-window latency (batch {batch}) ≤ 0.5 × {reference}'s",
        f"{ratio:.2f} × ({ours_ms:.1f} vs {reference_ms:.1f} ms)",
        ratio <= 0.5,
    )


def daemon_targets(fast: DaemonResult | None, realtime: DaemonResult | None) -> list[Target]:
    """The daemon targets: ≥ 100 windows/s from a file, 8 channels under half the cores,
    steady RSS < 150 MB, first score < 3 s."""
    targets = []
    if fast is not None and fast.windows_per_second is not None:
        targets.append(
            Target(
                "one channel from a file, hop 1 s: ≥ 100 windows/s",
                f"{fast.windows_per_second:.1f} windows/s",
                fast.windows_per_second >= 100,
            )
        )
    if realtime is not None and realtime.cpu_share is not None:
        targets.append(
            Target(
                f"8 channels in real time: < 50 % of {realtime.cores} cores",
                f"{100 * realtime.cpu_share:.0f} %",
                realtime.cpu_share < 0.5,
            )
        )
    for result in (r for r in (fast, realtime) if r is not None and r.steady_rss_mb):
        targets.append(
            Target(
                f"steady RSS < 150 MB ({result.label})",
                f"{result.steady_rss_mb:.0f} MB",
                result.steady_rss_mb < 150,
            )
        )
    if fast is not None and fast.first_score_seconds is not None:
        targets.append(
            Target(
                "start to first score < 3 s",
                f"{fast.first_score_seconds:.2f} s",
                fast.first_score_seconds < 3,
            )
        )
    return targets


def targets_text(targets: Sequence[Target]) -> str:
    return "\n".join(f"- {'met' if t.met else 'MISSED'}: {t.name}: {t.measured}" for t in targets)


def machine_summary(load_at_start: str | None = None) -> str:
    """CPU model, cores, memory, and the load averages (at the start, and now)."""
    fields = {}
    if shutil.which("lscpu"):
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in output.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    flags = fields.get("Flags", "").split()
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16") if f in flags]
    cpu = fields.get("Model name") or platform.processor() or "unknown CPU"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"- CPU: {cpu}, {fields.get('CPU(s)', os.cpu_count())} CPUs "
        f"({fields.get('Thread(s) per core', '?')} thread(s) per core), "
        f"{fields.get('Architecture', platform.machine())}, {' '.join(simd) or 'no AVX2'}"
        + (f", {fields['Hypervisor vendor']} guest" if "Hypervisor vendor" in fields else ""),
        f"- caches: L2 {fields.get('L2 cache', '?')}, L3 {fields.get('L3 cache', '?')}; "
        f"memory {memory:.0f} GiB; {platform.system()} {platform.release()}",
        "- load average (1, 5, 15 min): "
        + (f"at the start {load_at_start}, at the end " if load_at_start else "now ")
        + load_text(),
    ]
    return "\n".join(lines)


def load_text() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def versions() -> str:
    """Versions of what the numbers depend on."""
    import numpy
    import onnxruntime

    parts = [f"Python {platform.python_version()}", f"numpy {numpy.__version__}"]
    parts.append(f"onnxruntime {onnxruntime.__version__}")
    try:
        import tensorrt

        parts.append(f"tensorrt {tensorrt.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)
