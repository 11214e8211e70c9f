"""`edge-asd run`: sources -> windower -> one engine batch per hop -> scorers -> deciders -> MQTT.

Start-up checks everything that can be checked before audio flows (model, calibrations,
devices), then warms the engine up, connects to the broker in the background and tells
systemd it is ready. Every hop the windower hands over one batch with the newest window
of every machine; the engine runs it once; each machine's scorer and decider turn its row
into a state and events; events go through the durable outbox.

SIGTERM or SIGINT ends the loop after the window in flight: sources stop, the outbox is
flushed while the broker takes it, `available` becomes `stopped`, and the exit code is 0.
An unexpected error exits without `stopped`, so the broker publishes the last will
(`offline`) and systemd restarts the service.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from typing import Any

import numpy as np

from edge_asd.config.schema import Config
from edge_asd.daemon.event_ends import end_events_left_open, ends_on_stop, mark_of
from edge_asd.daemon.maintenance import MAINTENANCE, maintenance_gate
from edge_asd.daemon.memory import release_free_memory
from edge_asd.daemon.recent import ScorePoint
from edge_asd.daemon.reporting import register_stats, serve_prometheus
from edge_asd.daemon.state_log import MachineStateLog, unknown_reason
from edge_asd.daemon.wiring import MachineRuntime, load_machines, open_evidence, open_sources
from edge_asd.decider import ANOMALY, UNKNOWN, DecisionEvent
from edge_asd.engines.base import Engine
from edge_asd.errors import UserError
from edge_asd.mqtt.clock import clock_synced
from edge_asd.mqtt.discovery import discovery_for
from edge_asd.mqtt.outbox import Outbox
from edge_asd.mqtt.payloads import MAX_EVENT_BYTES, encode, event_payload, score_payload
from edge_asd.mqtt.publisher import Publisher
from edge_asd.stats import Stats
from edge_asd.systemd_notify import Notifier
from edge_asd.web.server import close_web, start_web

log = logging.getLogger(__name__)

BATCH_TIMEOUT_SECONDS = 0.5  # longest wait for a batch: bounds the reaction to a signal
FLUSH_TIMEOUT_SECONDS = 5.0  # at exit, how long the broker gets to take the outbox


class Daemon:
    """One run of the service: `run()` returns the exit code."""

    def __init__(
        self, config: Config, password: str | None = None, web_password: str | None = None
    ) -> None:
        self.config = config
        self.password = password
        self.web_password = web_password  # the page's (edge_asd.web), resolved with the MQTT one
        self.stop_requested = threading.Event()
        self.notifier = Notifier()
        self.stats = Stats()

    def request_stop(self, signum: int | None = None, frame: object = None) -> None:
        """Finish the window in flight, then stop (the SIGTERM and SIGINT handler)."""
        if signum is not None:
            log.info(
                "received %s: stopping after the window in flight", signal.Signals(signum).name
            )
        self.stop_requested.set()

    def run(self) -> int:
        from edge_asd.capture import Machine, Windower
        from edge_asd.daemon.memory import return_large_blocks
        from edge_asd.engines import open_engine
        from edge_asd.model_file import load_model_info

        return_large_blocks()  # before the first window: a steady RSS (see the module)
        config = self.config
        info = load_model_info(config.model)
        machines = load_machines(config, info)
        sources = open_sources(config)
        windower = Windower(
            sources,
            [Machine(m.name, m.source, m.channel) for m in config.machines],
            window_samples=info.window_samples,
            hop_seconds=config.audio.hop_seconds,
        )
        engine = open_engine(
            config.model,
            config.engine.kind,
            threads=config.engine.threads,
            allow_fallback=config.engine.allow_fallback,
            precision=config.engine.precision,
            cache_dir=config.engine.cache_dir,
            max_batch=len(machines),
            optimise=config.engine.optimise,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request_stop)
        loop = _Loop(self, info, machines, sources, windower, engine)
        return loop.run()


class _Loop:
    """The running service: owns the sources, the engine, the outbox and the publisher."""

    def __init__(self, daemon: Daemon, info, machines, sources, windower, engine: Engine) -> None:
        self.daemon = daemon
        self.config = daemon.config
        self.info = info
        self.machines = {m.name: m for m in machines}
        self.sources = sources
        self.windower = windower
        self.engine = engine
        self.stats = daemon.stats
        self.outbox = Outbox(self.config.outbox.path, self.config.outbox.max_events)
        self.publisher = Publisher(
            self.config.mqtt,
            self.config.device_id,
            self.outbox,
            password=daemon.password,
            discovery=discovery_for(self.config),
        )
        self.maintenance = maintenance_gate(self.config, self.publisher)
        self.state_log = MachineStateLog(self.machines)
        self.evidence = open_evidence(self.config, info)  # None when off
        self.web = None  # edge_asd.web.WebServer while the page is served
        self._started = time.monotonic()

    def run(self) -> int:
        try:
            self._start()
            self._score_until_stopped()
        except UserError:
            self._release()  # the CLI prints the message; no traceback for the user's error
            raise
        except BaseException:
            log.exception("stopping on an unexpected error (no 'stopped': the will says offline)")
            self._release()
            raise
        self._stop()
        return 0

    def _start(self) -> None:
        config = self.config
        register_stats(self)
        if config.metrics.prometheus_port is not None:
            serve_prometheus(self.stats, config.metrics)
        started = time.monotonic()
        self.engine.warm_up(batch_size=len(self.machines))
        release_free_memory()  # what loading the model and calibrations left behind
        fallback = self.stats.engine_fallback_reason
        log.info(
            "engine %s warmed up in %.2f s%s",
            self.engine.description,
            time.monotonic() - started,
            f" (instead of {self.config.engine.kind}: {fallback})" if fallback else "",
        )
        self.web = start_web(self, self.daemon.web_password)  # None unless web.enabled
        ends = end_events_left_open(self.outbox, clock_synced())  # before anything takes a seq
        if self.evidence is not None:
            for end in ends:  # its folder's event.json says so: the page no longer shows it open
                self.evidence.ended_before(end.payload)
        self.publisher.start()
        for name in self.machines:
            self.publisher.set_state(name, UNKNOWN)
        for source in self.sources.values():
            source.start()
        self._started = time.monotonic()
        self.daemon.notifier.ready(status=f"scoring {len(self.machines)} machine(s)")
        log.info(
            "scoring %s every %g s; device %s",
            ", ".join(self.machines),
            self.config.audio.hop_seconds,
            self.config.device_id,
        )

    def _score_until_stopped(self) -> None:
        next_stats = time.monotonic() + self.config.metrics.stats_interval_seconds
        while not self.daemon.stop_requested.is_set():
            batch = self.windower.next_batch(timeout=BATCH_TIMEOUT_SECONDS)
            if batch is not None:
                self._score(batch)
            healths = {name: source.health() for name, source in self.sources.items()}
            self._mark_silent_sources(set(batch.names) if batch is not None else set(), healths)
            if batch is not None or self._waiting_for_audio(healths):
                self.daemon.notifier.watchdog()
            if time.monotonic() >= next_stats:
                next_stats += self.config.metrics.stats_interval_seconds
                self.publisher.publish_stats(self.stats.snapshot())
            if self.evidence is not None:
                self.evidence.poll()  # retention every few minutes, repeated-failure lines
            if batch is None and self.windower.exhausted:
                log.info("every source has ended: %s", self._source_reasons(healths))
                return

    @staticmethod
    def _source_reasons(healths: dict[str, Any]) -> str:
        """Each source's name, state and why it is in it, for a log line."""
        return "; ".join(
            f"{name} {health.state} ({health.reason or health.last_error})"
            for name, health in healths.items()
        )

    def _score(self, batch) -> None:
        from edge_asd.scoring.features import window_features

        started = time.perf_counter()
        output = self.engine.infer_streams(batch.waveforms, batch.names, batch.end_frames)
        self.stats.record_inference((time.perf_counter() - started) * 1000.0, len(batch))
        features = window_features(output)
        levels = features.level_db
        rms = np.sqrt(np.mean(np.square(batch.waveforms, dtype=np.float64), axis=1))
        for row, name in enumerate(batch.names):
            machine = self.machines[name]
            score = float(machine.detector.score(features.take(slice(row, row + 1)))[0])
            timestamp = float(batch.end_times[row])
            offset = machine.level_offset_db(levels[row])
            machine.last_level_offset_db = offset
            quiet, ends = self.maintenance.check(name, machine.decider, timestamp)
            self._publish_events(machine, ends, offset)
            before = machine.decider.state
            # In maintenance the window is scored and counted, but the decider never sees it.
            events = [] if quiet else machine.decider.feed(score, timestamp, rms=float(rms[row]))
            state = MAINTENANCE if quiet else machine.decider.state
            # Kept before its events go out: a start's evidence is the audio up to this window.
            point = ScorePoint(timestamp, score, machine.decider.threshold, state, offset)
            machine.recent.add(batch.waveforms[row], int(batch.end_frames[row]), point)
            if self.evidence is not None:
                self.evidence.scored(name, batch.waveforms[row], point)
            self._publish_events(machine, events, offset)
            if state != before and not quiet:
                why = unknown_reason(score, float(rms[row]), machine.decider.rms_gate)
                self.state_log.changed(name, before, state, why)
            self.publisher.set_state(name, state)
            if self.config.mqtt.publish_scores:
                stream_seconds = batch.end_frames[row] / self.info.sample_rate
                payload = score_payload(timestamp, score, machine.decider.threshold, stream_seconds)
                self.publisher.publish_score(name, payload)
            started_event = any(e.type == "start" for e in events)
            above = score > machine.decider.threshold
            self.stats.record_window(name, above, started_event, state, offset, score)
            change = machine.level_change(self.stats.settled_level_offset_db(name))
            if change:
                log.warning("%s", change)

    def _waiting_for_audio(self, healths: dict[str, Any]) -> bool:
        """No window, for a known reason: the first window is still filling, or a source
        is down (its machines are `unknown`, the capture reopens it). The main loop is
        alive then, so systemd's watchdog is fed; it is not when audio "flows" but no
        window comes, which is a hang a restart may cure."""
        filling = self.windower.stats.batches == 0 and time.monotonic() - self._started < (
            self.info.window_samples / self.info.sample_rate + 2 * self.config.audio.hop_seconds
        )
        return filling or any(not health.ok for health in healths.values())

    def _mark_silent_sources(self, scored: set[str], health: dict[str, Any]) -> None:
        """Machines whose source stopped delivering (reopening, failed) become unknown."""
        for machine in self.machines.values():
            source_health = health[machine.source]
            if machine.name in scored or source_health.ok or source_health.state == "starting":
                continue
            if source_health.state == "finished" and not self.windower.exhausted:
                continue  # the last windows of a file are still to come
            why = source_health.reason or source_health.last_error
            self.state_log.changed(
                machine.name,
                machine.decider.state,
                UNKNOWN,
                f"input {machine.source!r} {source_health.state} ({why})",
            )
            self._publish_events(machine, machine.decider.input_down(time.time()))
            self.publisher.set_state(machine.name, UNKNOWN)
            self.stats.set_state(machine.name, UNKNOWN)

    def _publish_events(
        self,
        machine: MachineRuntime,
        events: list[DecisionEvent],
        level_offset_db: float | None = None,
    ) -> None:
        if level_offset_db is None:  # an end without a window (stop, input down): the last one's
            level_offset_db = machine.last_level_offset_db
        for event in events:
            clip = None  # evidence is written before the event names it (edge_asd.evidence)
            if self.evidence is not None:
                clip = self.evidence.clip_for(machine.name, event, machine.recent)
            render = functools.partial(
                self._render_event, machine.name, event, level_offset_db, clip
            )
            entry = self.publisher.publish_event(machine.name, render, mark_of(event))
            if self.evidence is not None:
                self.evidence.published(machine.name, event, entry.payload)
            log.log(
                logging.WARNING if event.type != "update" else logging.INFO,
                "%s: event %s %s (seq %d, score %.4g, peak %.4g, threshold %.4g)%s%s",
                machine.name,
                event.type,
                event.event_id,
                entry.seq,
                event.score,
                event.peak_score,
                event.threshold,
                " [state anomaly]" if machine.decider.state == ANOMALY else "",
                f" reason {event.reason}" if event.reason else "",
            )

    def _render_event(
        self,
        machine: str,
        event: DecisionEvent,
        level_offset_db: float | None,
        clip: str | None,
        seq: int,
    ) -> bytes:
        payload = event_payload(
            event,
            device_id=self.config.device_id,
            machine=machine,
            model_sha256=self.info.onnx_sha256,
            seq=seq,
            clock_synced=clock_synced(),
            level_offset_db=level_offset_db,
            clip=clip,
        )
        return encode(payload, max_bytes=MAX_EVENT_BYTES)

    def _stop(self) -> None:
        self.daemon.notifier.stopping()
        for source in self.sources.values():
            source.stop()
        deciders = ((name, m.decider) for name, m in self.machines.items())
        for name, end in ends_on_stop(deciders, time.time()):
            self._publish_events(self.machines[name], [end])
        close_web(self.web)  # logs an error, never raises: the stop goes on
        self.publisher.publish_stats(self.stats.snapshot())
        self.publisher.stop(flush_timeout_s=FLUSH_TIMEOUT_SECONDS)
        self.engine.close()
        self.outbox.close()
        self.state_log.close()
        self.maintenance.modes.close()
        if self.evidence is not None:
            self.evidence.close()
        log.info("stopped cleanly")

    def _release(self) -> None:
        """After an error: stop capture, keep the outbox on disk, leave MQTT to its will."""
        close_web(self.web)
        for source in self.sources.values():
            try:
                source.stop()
            except Exception:  # already failing: the first error is the one to report
                log.debug("source stop failed", exc_info=True)
        self.outbox.close()
        self.state_log.close()
