"""Home Assistant's MQTT discovery schema, as its documentation states it, for tests.

Written from Home Assistant's documentation (MQTT discovery, MQTT binary sensor, MQTT
sensor): the keys each component accepts and their types, the required ones, the device,
origin and availability maps, and the config topic's form. `render` evaluates a template
as Home Assistant does (`value`: the payload, `value_json`: the payload parsed as JSON).
"""

from __future__ import annotations

import json
import re

import jinja2

# Keys every MQTT entity accepts (HA docs, "MQTT discovery" and each component's page).
ENTITY_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "unique_id": str,
    "object_id": str,
    "device": dict,
    "origin": dict,
    "availability": list,
    "availability_mode": str,
    "qos": int,
    "state_topic": str,
    "value_template": str,
    "json_attributes_topic": str,
    "json_attributes_template": str,
    "icon": str,
    "enabled_by_default": bool,
    "entity_category": str,
    "expire_after": int,
    "force_update": bool,
    "encoding": str,
    "device_class": str,
}
COMPONENT_KEYS = {
    "binary_sensor": {**ENTITY_KEYS, "payload_on": str, "payload_off": str, "off_delay": int},
    "sensor": {
        **ENTITY_KEYS,
        "state_class": str,
        "unit_of_measurement": str,
        "suggested_display_precision": int,
        "last_reset_value_template": str,
    },
}
# state_topic is required by both; unique_id and device for HA to register a device.
REQUIRED = {"state_topic", "unique_id", "device"}
DEVICE_KEYS = {
    "identifiers": (list, str),
    "connections": list,
    "name": str,
    "manufacturer": str,
    "model": str,
    "model_id": str,
    "sw_version": str,
    "hw_version": str,
    "serial_number": str,
    "suggested_area": str,
    "configuration_url": str,
    "via_device": str,
}
ORIGIN_KEYS = {"name": str, "sw_version": str, "support_url": str}
AVAILABILITY_KEYS = {
    "topic": str,
    "payload_available": str,
    "payload_not_available": str,
    "value_template": str,
}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
CONFIG_TOPIC = re.compile(
    r"(?P<prefix>.+)/(?P<component>binary_sensor|sensor)/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config"
)


def check_keys(where: str, got: dict, allowed: dict) -> None:
    for key, value in got.items():
        assert key in allowed, f"{where}: {key!r} is not a key Home Assistant knows"
        kind = allowed[key]
        assert isinstance(value, kind), f"{where}.{key}: {value!r} is not {kind}"
        assert not (kind is int and isinstance(value, bool)), f"{where}.{key} is a bool"


def check_config(topic: str, config: dict) -> str:
    """Assert one config follows HA's discovery schema; returns its component."""
    match = CONFIG_TOPIC.fullmatch(topic)
    assert match, f"{topic}: not <prefix>/<component>/<node_id>/<object_id>/config"
    component = match["component"]
    check_keys(topic, config, COMPONENT_KEYS[component])
    assert set(config) >= REQUIRED, f"{topic}: lacks {REQUIRED - set(config)}"
    assert not set("+#") & set(config["state_topic"]), "a state topic has no wildcards"
    assert config.get("qos", 0) in (0, 1, 2)
    check_keys(f"{topic}.device", config["device"], DEVICE_KEYS)
    assert config["device"].get("identifiers") or config["device"].get("connections")
    check_keys(f"{topic}.origin", config["origin"], ORIGIN_KEYS)
    assert "name" in config["origin"], "origin needs a name"
    for entry in config["availability"]:
        check_keys(f"{topic}.availability", entry, AVAILABILITY_KEYS)
        assert "topic" in entry
    if component == "binary_sensor":
        assert config["device_class"] == "problem"
    else:
        assert config["state_class"] in STATE_CLASSES
    return component


def render(template: str, payload: bytes | str) -> str:
    """What Home Assistant makes of `payload` with `template`."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    try:
        value_json = json.loads(text)
    except ValueError:
        value_json = None
    return jinja2.Environment().from_string(template).render(value=text, value_json=value_json)
