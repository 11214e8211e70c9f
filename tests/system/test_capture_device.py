"""Live capture through PortAudio from the ALSA virtual microphone (tests/harness/alsa.py).

The virtual microphone delivers its file as fast as PortAudio reads it (no clock), and
stale data past the end, so the bounded captures here stop (`stop_after_seconds`) before
the end of what was written, and every window is checked against the written samples.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge_asd.capture import AudioDeviceError, DeviceSource, Machine, Windower, find_input_device

pytestmark = pytest.mark.system


def wait_until(predicate, timeout_seconds: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def noise(seconds: float, channels: int, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (round(seconds * sample_rate), channels))


def test_device_capture_ends_in_exactly_the_windows_of_the_written_samples(virtual_mic):
    mic = virtual_mic(noise(6.0, channels=2), sample_rate=16000)
    source = DeviceSource("edgeasd_mic", channels=2, stop_after_seconds=4.0, capacity_seconds=5)
    machines = [Machine("left", "mic", 0), Machine("right", "mic", 1)]
    windower = Windower({"mic": source}, machines, window_samples=16000, hop_seconds=0.5)
    with source:
        batches = list(windower)  # ends once the bounded capture finished and was read

    written = mic.samples_float
    health = source.health()
    assert health.state == "finished" and health.frames == 64000 and health.reopens == 0
    ends = [int(batch.end_frames[0]) for batch in batches]
    assert ends[-1] == 64000  # the last whole window of the 4 s captured
    assert windower.stats.windows + windower.stats.skipped == 2 * 7  # ends 16000 ... 64000
    for batch, end in zip(batches, ends, strict=True):
        assert batch.names == ("left", "right")
        np.testing.assert_array_equal(batch.waveforms, written[end - 16000 : end].T)
    for end in range(16000, 64001, 8000):  # the ring still holds every hop's window
        np.testing.assert_array_equal(source.ring.read(end, 16000), written[end - 16000 : end])


def test_a_device_opened_at_its_own_rate_is_resampled_to_16k(virtual_mic):
    import soxr

    mic = virtual_mic(noise(4.0, channels=1, sample_rate=48000), sample_rate=48000)
    source = DeviceSource("edgeasd_mic", device_rate=48000, stop_after_seconds=3.0)
    windower = Windower({"mic": source}, [Machine("m", "mic", 0)], 16000, hop_seconds=1.0)
    with source:
        assert source.capture_rate == 48000 and source.sample_rate == 16000
        batches = list(windower)

    expected = soxr.resample(mic.samples_float[:144000], 48000, 16000, quality="HQ")[:, 0]
    assert source.ring.total_frames == 48000
    assert int(batches[-1].end_frames[0]) == 48000
    for batch in batches:
        end = int(batch.end_frames[0])
        np.testing.assert_allclose(batch.waveforms[0], expected[end - 16000 : end], atol=1e-6)


def test_a_stream_that_dies_is_reopened_and_health_says_why(virtual_mic):
    virtual_mic(noise(2.0, channels=1), sample_rate=16000)
    source = DeviceSource("edgeasd_mic", blocksize=4000, backoff_seconds=0.1)
    with source:
        wait_until(lambda: source.ring.total_frames > 0)
        source._stream.abort()  # the device vanishes: PortAudio ends the stream under us
        wait_until(lambda: source.health().reopens == 1)
        frames_at_reopen = source.ring.continuous_from
        wait_until(lambda: source.ring.total_frames > frames_at_reopen + 16000)
        health = source.health()
    assert health.state == "running" and health.ok
    assert "audio stream stopped" in health.last_error
    assert health.seconds_since_audio < source.stall_seconds  # audio flows again
    assert frames_at_reopen > 0  # the reopened stream starts after a gap
    assert source.health().state == "stopped"


def test_a_device_that_cannot_reopen_is_retried_until_it_returns(virtual_mic):
    mic = virtual_mic(noise(2.0, channels=1), sample_rate=16000)
    infile, hidden = mic.home / "mic.raw", mic.home / "unplugged.raw"
    source = DeviceSource("edgeasd_mic", blocksize=4000, backoff_seconds=0.1)
    with source:
        wait_until(lambda: source.ring.total_frames > 0)
        infile.rename(hidden)  # ALSA's file plugin cannot open its input: the device is gone
        source._stream.abort()
        wait_until(lambda: "cannot open input device" in (source.health().last_error or ""))
        health = source.health()
        assert health.state == "reopening" and not health.ok and health.reopens == 0
        hidden.rename(infile)  # plugged back in
        wait_until(lambda: source.health().ok)
        assert source.health().reopens == 1


def test_devices_are_found_by_name_and_errors_list_the_inputs(virtual_mic):
    virtual_mic(noise(1.0, channels=1), sample_rate=16000)
    device = find_input_device("EDGEASD_MIC")
    assert device.name == "edgeasd_mic" and find_input_device(device.index) == device
    assert find_input_device("asd_m").name == "edgeasd_mic"
    with pytest.raises(AudioDeviceError, match=r"ambiguous.*edgeasd_raw.*edgeasd_mic"):
        find_input_device("edgeasd")
    with pytest.raises(AudioDeviceError, match=r"no input device matches 'usb'.*edgeasd_mic"):
        find_input_device("usb")
    with pytest.raises(AudioDeviceError, match="has 128 input channels; 129"):
        DeviceSource("edgeasd_mic", channels=129)


def test_the_devices_command_lists_the_microphone(virtual_mic, capsys):
    import json

    from edge_asd.cli import main

    virtual_mic(noise(1.0, channels=1), sample_rate=16000)
    assert main(["devices", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    mic = next(row for row in rows if row["name"] == "edgeasd_mic")
    assert mic["input_channels"] == 128 and mic["default_rate"] == 16000 and mic["captures_16k"]
    assert main(["devices"]) == 0
    assert "edgeasd_mic" in capsys.readouterr().out
