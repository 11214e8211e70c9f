"""The test harness's real parts work: broker round trip, virtual microphone, shared data."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from tests.harness.broker import Broker, Collector


def test_broker_delivers_a_published_message(mqtt_broker: Broker, mqtt_collector: Collector):
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", mqtt_broker.port)
    publisher.loop_start()
    publisher.publish("edge-asd/test/hello", b"world", qos=1).wait_for_publish(5)
    publisher.disconnect()
    publisher.loop_stop()

    got = mqtt_collector.wait_for(lambda ms: any(m.topic == "edge-asd/test/hello" for m in ms))
    assert [m.payload for m in got if m.topic == "edge-asd/test/hello"] == [b"world"]


def test_broker_restarts_on_the_same_port(mqtt_broker: Broker):
    port = mqtt_broker.port
    mqtt_broker.stop()
    assert not mqtt_broker.running
    mqtt_broker.start()
    assert mqtt_broker.running and mqtt_broker.port == port


def test_virtual_microphone_delivers_the_written_samples(virtual_mic):
    import numpy as np
    import sounddevice as sd

    rng = np.random.default_rng(1)
    written = rng.uniform(-0.5, 0.5, size=(48000, 2))
    mic = virtual_mic(written, sample_rate=16000)
    names = [d["name"] for d in sd.query_devices()]
    assert mic.name in names

    recorded = sd.rec(32000, samplerate=16000, channels=2, dtype="int16", device=mic.name)
    sd.wait()
    np.testing.assert_array_equal(recorded, mic.samples_int16[:32000])


def test_shared_data_has_the_dcase_layout(shared_data):
    wavs = sorted((shared_data / "sensiml_fan" / "train").glob("section_*_train_normal_*.wav"))
    if not wavs:
        pytest.skip(f"no sensiml_fan train clips under {shared_data}")
    assert all(w.name.split("_")[2] in ("source", "target") for w in wavs)
