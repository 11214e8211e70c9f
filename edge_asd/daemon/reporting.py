"""What the daemon reports about itself: the fields of `stats` and the Prometheus endpoint.

`register_stats` tells the loop's Stats where each field is read (the windower's counts,
the sources' health, the outbox, the publisher, evidence); `stats` on MQTT and the
Prometheus view (edge_asd.stats) both read them from there.
"""

from __future__ import annotations

import logging
from typing import Any

from edge_asd.config.outputs import MetricsConfig
from edge_asd.errors import ConfigError
from edge_asd.stats import Stats, start_prometheus

log = logging.getLogger(__name__)


def serve_prometheus(stats: Stats, metrics: MetricsConfig) -> None:
    """Serve `stats` as Prometheus metrics (edge_asd.stats); ConfigError when it cannot."""
    try:
        start_prometheus(stats, metrics.prometheus_port, metrics.prometheus_address)
    except ImportError:
        raise ConfigError(
            "metrics.prometheus_port is set, but prometheus-client is not installed "
            "(pip install 'edge-asd[metrics]')"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"metrics.prometheus_port: cannot listen on "
            f"{metrics.prometheus_address}:{metrics.prometheus_port} ({exc.strerror})"
        ) from None
    log.info(
        "Prometheus metrics on http://%s:%d/metrics",
        metrics.prometheus_address,
        metrics.prometheus_port,
    )


def register_stats(loop: Any) -> None:
    """Tell `loop.stats` (edge_asd.stats.Stats) the engine, the machines and where each
    field of `stats` is read: the windower, sources, outbox, publisher, evidence."""
    stats = loop.stats
    stats.engine = loop.engine.name
    stats.engine_fallback_reason = loop.engine.fallback_reason
    for machine in loop.machines.values():
        cal = machine.calibration
        exceedance = (cal.method_params or {}).get("window_exceedance")
        stats.add_machine(
            machine.name,
            loop.config.audio.hop_seconds,
            expected_alarms_per_day=cal.expected_false_alarms_per_day,
            expected_window_exceedance=exceedance,
            threshold=machine.decider.threshold,
        )
    stats.add_source("windows_skipped", lambda: loop.windower.stats.skipped)
    stats.add_source("windows_lost", lambda: loop.windower.stats.lost)
    stats.add_source(
        "input_overflows", lambda: sum(s.health().overflows for s in loop.sources.values())
    )
    stats.add_source("outbox_depth", lambda: loop.outbox.health().depth)
    stats.add_source("outbox_dropped", lambda: loop.outbox.health().dropped)
    stats.add_source("outbox_write_failures", lambda: loop.outbox.health().write_failures)
    stats.add_source("outbox_error", lambda: loop.outbox.health().error)
    stats.add_source("mqtt_connected", lambda: loop.publisher.connected)
    # Kept after reconnecting: the stats reach the broker only once connected again.
    stats.add_source("mqtt_connect_failures", lambda: loop.publisher.status().failures)
    stats.add_source("mqtt_last_error", lambda: loop.publisher.status().last_error)
    stats.add_source("inputs", lambda: input_stats(loop.sources))
    if loop.evidence is not None:
        evidence = loop.evidence
        stats.add_source("evidence_clips", lambda: evidence.health().clips)
        stats.add_source("evidence_bytes", lambda: evidence.health().bytes)
        stats.add_source("evidence_failures", lambda: evidence.health().failures)
        stats.add_source("evidence_error", lambda: evidence.health().error)


def input_stats(sources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each source's state, why it is in it, and its last error: `stats` on the input."""
    inputs = {}
    for name, source in sources.items():
        health = source.health()
        since = health.seconds_since_audio
        inputs[name] = {
            "state": health.state,
            "seconds_since_audio": None if since is None else round(since, 1),
            "reopens": health.reopens,
            "overflows": health.overflows,
            "last_error": health.last_error,
            "reason": health.reason,
        }
    return inputs
