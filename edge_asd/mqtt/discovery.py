"""Home Assistant MQTT discovery: the daemon's machines appear in Home Assistant by themselves.

Opt-in (`home_assistant.enabled`). One Home Assistant device per daemon; per machine:

    binary_sensor  <machine> problem  from {machine}/state: anomaly -> ON, normal -> OFF,
                                      anything else (unknown, maintenance) -> unknown
    sensor         <machine> score    from `stats` (the latest window's score, once per
                                      stats interval), the threshold as an attribute

Configs go to `<discovery_prefix>/<component>/<device_id>/<machine>_<what>/config`,
retained, on every connect and again whenever Home Assistant's birth message
(`<discovery_prefix>/status` = `online`) arrives, so a Home Assistant that restarted, or
whose broker lost its retained messages, learns them again.

Availability is the daemon's `available` topic. It carries `online`, `stopped` (clean
exit) or `offline` (the last will); Home Assistant knows only one "not available"
payload, so a template maps `stopped` to `offline` too: either way the entities show
unavailable while the daemon is not running.

Why the score comes from `stats` and not `{machine}/score`: `stats` is always published,
`score` only with `mqtt.publish_scores`; and once a stats interval (60 s by default) is
what Home Assistant's recorder should store, where a state a second per machine would
bloat its database. The score topic stays there for dashboards that want every window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from edge_asd import __version__
from edge_asd.config.schema import Config
from edge_asd.mqtt.payloads import AVAILABLE_OFFLINE, AVAILABLE_ONLINE, Topics, encode

log = logging.getLogger(__name__)

BIRTH_ONLINE = b"online"  # Home Assistant's birth payload on <discovery_prefix>/status
# Home Assistant's binary_sensor sets its state to unknown for the payload "None": a
# machine whose state is unknown (input down, too quiet) or in maintenance has no problem
# we know of, nor the lack of one.
PROBLEM_TEMPLATE = "{{ 'ON' if value == 'anomaly' else ('OFF' if value == 'normal' else 'None') }}"
AVAILABILITY_TEMPLATE = (
    "{{ '" + AVAILABLE_ONLINE + "' if value == '" + AVAILABLE_ONLINE + "' else '"
    + AVAILABLE_OFFLINE + "' }}"
)  # fmt: skip


@dataclass(frozen=True)
class Discovery:
    """The discovery configs of one daemon, and when to (re)publish them."""

    prefix: str  # Home Assistant's discovery prefix
    topics: Topics
    machines: tuple[str, ...]

    @property
    def birth_topic(self) -> str:
        return f"{self.prefix}/status"

    def configs(self) -> dict[str, dict[str, Any]]:
        """Config topic -> config payload (a JSON object) of every entity."""
        configs = {}
        for machine in self.machines:
            configs[self._topic("binary_sensor", machine, "problem")] = self._problem(machine)
            configs[self._topic("sensor", machine, "score")] = self._score(machine)
        return configs

    def on_birth(self, client: Any, payload: bytes) -> None:
        """Republish the configs when Home Assistant says it is (back) online on
        `birth_topic` (the publisher subscribes to it on every connect)."""
        if payload == BIRTH_ONLINE:
            log.info(
                "Home Assistant is online: republishing %d discovery configs",
                2 * len(self.machines),
            )
            self.publish(client)

    def publish(self, client: Any) -> None:
        """Every config, retained at QoS 1 (paho queues them while disconnected)."""
        for topic, payload in self.configs().items():
            client.publish(topic, encode(payload), qos=1, retain=True)

    def _topic(self, component: str, machine: str, what: str) -> str:
        return f"{self.prefix}/{component}/{self.topics.device_id}/{machine}_{what}/config"

    def _unique_id(self, machine: str, what: str) -> str:
        return f"edge-asd_{self.topics.device_id}_{machine}_{what}"

    def _common(self, machine: str, what: str) -> dict[str, Any]:
        return {
            "name": f"{machine} {what}",
            "unique_id": self._unique_id(machine, what),
            "device": {
                "identifiers": [f"edge-asd_{self.topics.device_id}"],
                "name": f"edge-asd {self.topics.device_id}",
                "manufacturer": "edge-asd",
                "model": "anomalous machine sound detector",
                "sw_version": __version__,
            },
            "origin": {"name": "edge-asd", "sw_version": __version__},
            "availability": [
                {
                    "topic": self.topics.available,
                    "payload_available": AVAILABLE_ONLINE,
                    "payload_not_available": AVAILABLE_OFFLINE,
                    "value_template": AVAILABILITY_TEMPLATE,
                }
            ],
            "qos": 1,
        }

    def _problem(self, machine: str) -> dict[str, Any]:
        return {
            **self._common(machine, "problem"),
            "device_class": "problem",
            "state_topic": self.topics.state(machine),
            "value_template": PROBLEM_TEMPLATE,
            "payload_on": "ON",
            "payload_off": "OFF",
        }

    def _score(self, machine: str) -> dict[str, Any]:
        entry = f"value_json.machines['{machine}']"  # names are [A-Za-z0-9_-]: no quoting
        return {
            **self._common(machine, "score"),
            "state_topic": self.topics.stats,
            "value_template": "{{ " + entry + ".score }}",
            "json_attributes_topic": self.topics.stats,
            "json_attributes_template": (
                "{{ {'threshold': " + entry + ".threshold, 'state': " + entry + ".state}"
                " | tojson }}"
            ),
            "state_class": "measurement",
            "suggested_display_precision": 3,
            "icon": "mdi:waveform",
        }


def discovery_for(config: Config) -> Discovery | None:
    """The daemon's Discovery, or None when `home_assistant.enabled` is false."""
    if not config.home_assistant.enabled:
        return None
    topics = Topics(config.mqtt.topic_prefix, config.device_id)
    machines = tuple(machine.name for machine in config.machines)
    return Discovery(config.home_assistant.discovery_prefix, topics, machines)
