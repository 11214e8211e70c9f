"""Home Assistant discovery configs, checked against HA's MQTT discovery schema
(tests/harness/home_assistant.py, written from HA's documentation), their templates
rendered as Home Assistant renders them."""

from __future__ import annotations

import json

import pytest

from edge_asd.mqtt.discovery import Discovery
from edge_asd.mqtt.payloads import (
    AVAILABLE_OFFLINE,
    AVAILABLE_ONLINE,
    AVAILABLE_STOPPED,
    Topics,
    encode,
)
from edge_asd.stats import Stats
from tests.harness.home_assistant import check_config, render

TOPICS = Topics("edge-asd", "jetson-01")
MACHINES = ("pump-1", "fan_2")


def configs() -> dict[str, dict]:
    # what a subscriber gets: through the same encoder as every payload
    raw = Discovery("homeassistant", TOPICS, MACHINES).configs()
    return {topic: json.loads(encode(config)) for topic, config in raw.items()}


def test_every_discovery_config_follows_home_assistants_schema():
    got = configs()
    components = [check_config(topic, config) for topic, config in got.items()]
    assert sorted(components) == ["binary_sensor", "binary_sensor", "sensor", "sensor"]
    unique_ids = [config["unique_id"] for config in got.values()]
    assert len(set(unique_ids)) == len(unique_ids), "two entities with one unique_id"
    devices = {json.dumps(config["device"], sort_keys=True) for config in got.values()}
    assert len(devices) == 1, "one device per daemon"
    (device,) = (config["device"] for config in list(got.values())[:1])
    assert device["identifiers"] == ["edge-asd_jetson-01"] and device["sw_version"]
    assert "homeassistant/binary_sensor/jetson-01/pump-1_problem/config" in got


def test_the_problem_sensor_is_on_for_anomaly_off_for_normal_and_unknown_otherwise():
    (problem,) = (c for t, c in configs().items() if "pump-1_problem" in t)
    assert problem["state_topic"] == "edge-asd/jetson-01/pump-1/state"
    said = {
        state: render(problem["value_template"], state)
        for state in ("anomaly", "normal", "unknown", "maintenance")
    }
    # "None" is Home Assistant's payload for an unknown state
    assert said == {"anomaly": "ON", "normal": "OFF", "unknown": "None", "maintenance": "None"}
    assert (problem["payload_on"], problem["payload_off"]) == ("ON", "OFF")


@pytest.mark.parametrize(
    ("published", "available"),
    [(AVAILABLE_ONLINE, True), (AVAILABLE_STOPPED, False), (AVAILABLE_OFFLINE, False)],
)
def test_entities_are_unavailable_after_a_clean_stop_and_after_the_last_will(
    published: str, available: bool
):
    for config in configs().values():
        (entry,) = config["availability"]
        assert entry["topic"] == "edge-asd/jetson-01/available"
        said = render(entry["value_template"], published)
        wanted = entry["payload_available"] if available else entry["payload_not_available"]
        assert said == wanted


def test_the_score_sensor_reads_the_latest_score_and_threshold_from_the_stats_message():
    stats = Stats()
    for machine in MACHINES:
        stats.add_machine(machine, hop_seconds=1.0, threshold=2.5)
    (score,) = (c for t, c in configs().items() if "pump-1_score" in t)
    assert score["state_topic"] == "edge-asd/jetson-01/stats"
    before = encode(stats.snapshot())
    assert render(score["value_template"], before) == "None"  # unknown, not 0
    stats.record_window("pump-1", above=False, alarm=False, state="normal", score=1.25)
    stats.record_window("fan_2", above=True, alarm=False, state="normal", score=9.0)
    message = encode(stats.snapshot())
    assert float(render(score["value_template"], message)) == 1.25
    attributes = json.loads(render(score["json_attributes_template"], message))
    assert attributes == {"threshold": 2.5, "state": "normal"}
