"""The MQTT publisher: paho-mqtt 2.x (callback API 2), events from the outbox at QoS 1.

Connection: `start()` connects in the background and keeps retrying with exponential
backoff (reconnect_min_seconds .. reconnect_max_seconds), the first connection at boot
included: a broker that is down when the Jetson starts is not a reason to exit. On every
(re)connect it republishes the retained `available online` and each machine's current
`state` (so a broker restarted without persistence learns them again), and, with Home
Assistant discovery on, its configs (edge_asd/mqtt/discovery.py), sent again on HA's
birth message. Subscriptions (`subscribe`: maintenance commands, HA's birth) are renewed
on every connect.

Events: the sender thread hands outbox entries to paho in `seq` order, at most
`max_inflight` unacknowledged at once, only while connected. An entry leaves the outbox
when its PUBACK arrives (`on_publish` with its mid). Paho keeps handed messages across a
reconnect and resends them first; new entries wait until those are acknowledged, so the
broker sees events in seq order. Entries not yet handed stay on disk, so an outage of
days costs disk, not memory. After a restart everything in the outbox is sent again:
QoS 1 is at-least-once, and `seq` lets a consumer drop a duplicate.

Failures: every failed attempt is counted and its cause (with the fix, from
connect_errors) kept for `stats`; a cause is logged once at WARNING, again only when it
changes, and the first success after failures is logged with their count.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from edge_asd.config.outputs import MqttConfig
from edge_asd.logs import RepeatedWarning
from edge_asd.mqtt import connect_errors
from edge_asd.mqtt.client import make_client
from edge_asd.mqtt.discovery import Discovery
from edge_asd.mqtt.outbox import Entry, EventMark, Outbox
from edge_asd.mqtt.payloads import (
    AVAILABLE_ONLINE,
    AVAILABLE_STOPPED,
    PayloadTooLarge,
    Topics,
    encode,
)

log = logging.getLogger(__name__)

RESEND_BARRIER_SECONDS = 10.0  # longest wait for paho's resends before sending new events
SENDER_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class PublisherStatus:
    """The connection as the stats report it."""

    connected: bool
    connects: int  # successful connections since start
    inflight: int  # events handed to paho, waiting for their PUBACK
    last_error: str | None  # why the latest attempt failed (kept after reconnecting)
    failures: int  # failed connection attempts since start


class Publisher:
    """Publishes one device's topics; thread-safe. `start()`, publish..., `stop()`."""

    def __init__(
        self,
        config: MqttConfig,
        device_id: str,
        outbox: Outbox,
        password: str | None = None,
        max_inflight: int = 50,
        discovery: Discovery | None = None,
    ) -> None:
        self.config = config
        self.discovery = discovery  # Home Assistant's configs, published on every connect
        self.topics = Topics(config.topic_prefix, device_id)
        self.outbox = outbox
        self.max_inflight = max_inflight
        self._cond = threading.Condition()
        self._connected = False
        self._connects = 0
        self._last_error: str | None = None
        self._failures = 0  # failed attempts since start
        self._failures_since_connect = 0
        self._logged_error: str | None = None  # the cause last logged, None once connected
        self._answered = False  # a CONNACK came in the current attempt
        self._explained: dict[str, str] = {}  # exception text -> cause, until connected
        self._inflight: dict[int, tuple[int, mqtt.MQTTMessageInfo]] = {}  # mid -> (seq, info)
        self._last_handed_seq = 0
        self._resend_barrier_until = 0.0
        self._wake = True
        self._stopping = False
        self._states: dict[str, str] = {}  # the latest state of each machine
        self._subscriptions: list[str] = []  # topic filters subscribed on every connect
        # Held while publishing states; on_publish (which runs under paho's message lock)
        # never takes it, so publishing under it cannot deadlock with paho's thread.
        self._state_lock = threading.Lock()
        # both can come once per stats interval or per sending round: counted, not repeated
        self._stats_refused = RepeatedWarning(log, "MQTT: stats not sent")
        self._event_refused = RepeatedWarning(log, "MQTT: paho refused an event")
        self._client = make_client(config, device_id, password, self.topics.available)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_publish = self._on_publish
        if discovery is not None:  # HA's birth message: publish the configs again
            self.subscribe(
                discovery.birth_topic,
                lambda topic, payload: discovery.on_birth(self._client, payload),
            )
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)

    # --- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying forever) and start sending the outbox."""
        log.info(
            "MQTT: connecting to %s:%d%s as %s",
            self.config.host,
            self.config.port,
            " (TLS)" if self.config.tls else "",
            self.topics.base,
        )
        waiting = self.outbox.health().depth
        if waiting:
            log.info("MQTT: the outbox holds %d event(s) from before; they go first", waiting)
        self._client.connect_async(
            self.config.host, self.config.port, keepalive=self.config.keepalive_seconds
        )
        self._client.loop_start()
        self._sender.start()

    def flush(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (every event acknowledged); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.outbox.health().depth == 0:
                return True
            time.sleep(0.05)
        return self.outbox.health().depth == 0

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Flush what the broker will take, publish `available stopped`, disconnect.

        Events left unacknowledged stay in the outbox for the next start.
        """
        # While disconnected the broker takes nothing: the outbox keeps it for next time.
        flushed = self.connected and self.flush(flush_timeout_s)
        waiting = self.outbox.health().depth
        if not flushed and waiting:
            log.warning("MQTT: %d event(s) stay in the outbox", waiting)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self.connected:
            info = self._client.publish(
                self.topics.available, AVAILABLE_STOPPED, qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=min(flush_timeout_s, 5.0))
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: could not publish 'stopped' (%s)", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._sender.join(timeout=5.0)
        self._stats_refused.close()
        self._event_refused.close()

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    def status(self) -> PublisherStatus:
        with self._cond:
            return PublisherStatus(
                self._connected,
                self._connects,
                len(self._inflight),
                self._last_error,
                self._failures,
            )

    # --- what the daemon publishes ----------------------------------------------------

    def publish_event(
        self, machine: str, render: Callable[[int], bytes], mark: EventMark | None = None
    ) -> Entry:
        """Store an event in the outbox (render(seq) -> payload) and send it when possible.

        `mark`: the event it belongs to, so that the outbox knows which events are open.
        """
        entry = self.outbox.append(self.topics.event(machine), render, mark)
        self._notify()
        return entry

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None:
        """Call handler(topic, payload) for each message on `topic_filter` (QoS 1), from
        every connect on. The handler runs in paho's thread: it must be quick and not raise."""
        self._client.message_callback_add(
            topic_filter, lambda client, userdata, msg: handler(msg.topic, msg.payload)
        )
        self._subscriptions.append(topic_filter)
        if self.connected:
            self._client.subscribe(topic_filter, qos=1)

    def set_state(self, machine: str, state: str) -> None:
        """Publish a machine's retained state when it changes (and again on reconnect)."""
        with self._state_lock:  # one order for this and the republish on connect
            changed = self._states.get(machine) != state
            self._states[machine] = state
            if changed and self.connected:
                self._client.publish(self.topics.state(machine), state, qos=1, retain=True)

    def publish_score(self, machine: str, payload: dict[str, Any]) -> None:
        """A window's score at QoS 0; dropped while disconnected (the next one follows)."""
        if self.connected:
            self._client.publish(self.topics.score(machine), encode(payload), qos=0)

    def publish_stats(self, payload: dict[str, Any]) -> None:
        """The stats at QoS 0; dropped while disconnected (or, a bug, when over the bound)."""
        if not self.connected:
            return
        try:
            data = encode(payload)
        except PayloadTooLarge as exc:  # the stats are not worth stopping the daemon for
            self._stats_refused.occurred(str(exc))
            return
        self._client.publish(self.topics.stats, data, qos=0)

    # --- paho callbacks (paho's network thread) ---------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cond:
            self._answered = True
        if reason_code.is_failure:
            self._connect_failed(connect_errors.explain_refusal(str(reason_code), self.config))
            return
        with self._cond:
            self._connected = True
            self._connects += 1
            failed, self._failures_since_connect = self._failures_since_connect, 0
            self._logged_error = None  # a failure after this connection is news again
            self._explained.clear()
            # paho resends what it still holds first; new events wait for those PUBACKs.
            if self._inflight:
                self._resend_barrier_until = time.monotonic() + RESEND_BARRIER_SECONDS
            self._wake = True
            self._cond.notify_all()
        after = f" after {failed} failed attempt(s)" if failed else ""
        log.info("MQTT: connected to %s:%d%s", self.config.host, self.config.port, after)
        client.publish(self.topics.available, AVAILABLE_ONLINE, qos=1, retain=True)
        for topic_filter in self._subscriptions:  # clean session: subscribe again every time
            client.subscribe(topic_filter, qos=1)
        with self._state_lock:  # a state set meanwhile is not overwritten by an older one
            for machine, state in self._states.items():
                client.publish(self.topics.state(machine), state, qos=1, retain=True)
        if self.discovery is not None:
            self.discovery.publish(client)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cond:
            was_connected, self._connected = self._connected, False
            answered, self._answered = self._answered, False
            stopping = self._stopping
        if stopping:
            return
        if was_connected:
            message = f"disconnected from {self.config.host}:{self.config.port} ({reason_code})"
            log.warning("MQTT: %s; reconnecting", message)
            with self._cond:
                self._last_error = message
        elif not answered:  # closed before any CONNACK: a refusal was handled in on_connect
            self._connect_failed(connect_errors.explain_closed(str(reason_code), self.config))

    def _on_connect_fail(self, client, userdata) -> None:
        # paho calls this inside its `except OSError:` around reconnect(), so the exception
        # that says why (DNS, refused, TLS verification ...) is the one being handled.
        exc = sys.exc_info()[1]
        key = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._answered = False
            cause = self._explained.get(key)
        if cause is None:  # explaining may probe the broker's certificate: once per cause
            cause = connect_errors.explain_exception(exc, self.config)
            with self._cond:
                self._explained[key] = cause
        self._connect_failed(cause)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cond:
            handed = self._inflight.pop(mid, None)
        if handed is not None:
            self._acked(handed[0])

    def _connect_failed(self, cause: str) -> None:
        """Count a failed attempt; log its cause unless the last one logged was the same."""
        with self._cond:
            self._failures += 1
            self._failures_since_connect += 1
            self._last_error = cause
            repeated, self._logged_error = self._logged_error == cause, cause
        if not repeated:  # a broker down for a day logs once, not at every backoff
            log.warning(
                "MQTT: cannot connect to %s:%d: %s (retrying with backoff)",
                self.config.host,
                self.config.port,
                cause,
            )

    # --- the sender thread ------------------------------------------------------------

    def _notify(self) -> None:
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def _acked(self, seq: int) -> None:
        self.outbox.ack(seq)
        with self._cond:
            if not self._inflight:
                self._resend_barrier_until = 0.0
            self._wake = True
            self._cond.notify_all()

    def _ready(self) -> bool:
        return (
            self._wake
            and self._connected
            and len(self._inflight) < self.max_inflight
            and time.monotonic() >= self._resend_barrier_until
        )

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._ready(), SENDER_POLL_SECONDS)
                if self._stopping:
                    return
                ready = self._ready()
                if ready:
                    self._wake = False
                after, room = self._last_handed_seq, self.max_inflight - len(self._inflight)
            self._sweep_published()
            if ready:
                self._send_pending(after, room)

    def _send_pending(self, after_seq: int, room: int) -> None:
        entries = self.outbox.pending(after_seq=after_seq, limit=room)
        for entry in entries:
            info = self._client.publish(entry.topic, entry.payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self._event_refused.occurred(f"event {entry.seq} (rc {info.rc})")
                with self._cond:
                    self._wake = True
                return
            # MQTT_ERR_NO_CONN: paho keeps the message and sends it after reconnecting.
            with self._cond:
                self._inflight[info.mid] = (entry.seq, info)
                self._last_handed_seq = entry.seq
        if len(entries) == room:
            self._notify()  # there may be more behind them

    def _sweep_published(self) -> None:
        """Ack events whose PUBACK came before their mid was recorded (a narrow race)."""
        with self._cond:
            done = [mid for mid, (_, info) in self._inflight.items() if info.is_published()]
            seqs = [self._inflight.pop(mid)[0] for mid in done]
        for seq in seqs:
            self._acked(seq)
