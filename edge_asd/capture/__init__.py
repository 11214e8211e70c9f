"""Capture and windows: everything between PortAudio (or a file) and the engine.

    source (device | file | synthetic) --writes--> RingBuffer (16 kHz, all channels)
        --> Windower: every hop, the last window of every machine --> WindowBatch

Sources (all have `start()`, `stop()`, `ring`, `sample_rate`, `channels`, `pacing`,
`health()`; use them as context managers):

    DeviceSource(device="USB", channels=2)     live input; index, name substring or None
    FileSource(path, pacing=FAST, loop=False)  WAV/FLAC replay, every channel kept
    SyntheticSource([MachineSynth(...), ...])  generated machine sound, one per channel

Pacing: REALTIME sources produce frames by the clock whether or not anyone reads them
(a device always; a file or synth replayed "live"). FAST sources (files, synths) produce
frames only when the windower asks, as fast as it consumes them: nothing is skipped.

Windows: `Windower(sources, machines, window_samples, hop_seconds)` with
`Machine(name, source, channel)`. `next_batch(timeout)` returns a `WindowBatch`
(`names`, `waveforms` float32 [n, window_samples], `end_frames`, `end_times`) or None
(timeout, or `exhausted`). Window k of a source ends at frame window_samples + k * hop,
exactly the windows `edge_asd.windows.sliding_windows` cuts offline. In REALTIME, a late
consumer gets the newest window and the ones it missed are counted in `stats.skipped`;
capture never waits and nothing queues. Windows that would span a gap in the input (a
reopened device) are not made; they are counted in `stats.lost`.

Health: `source.health()` -> `SourceHealth(state, frames, seconds_since_audio,
last_audio_time, overflows, reopens, last_error, reason)`; `ok` is False while a device
is reopening (publish `unknown`, with `reason` saying why), `finished` once a source ends
(`reason`: end of file, bounded capture done, failure, stop). Device sources capture
int16 by default (`sample_format="float32"` for the card's full resolution), reopen a
dead stream with backoff, and can stop after `stop_after_seconds` (a bounded recording).

`edge-asd devices` (edge_asd/commands/devices.py) lists the inputs a config can name.

A typical loop (the daemon's)::

    sources = {"mic": DeviceSource("USB", channels=2)}
    machines = [Machine("pump-1", "mic", 0), Machine("fan-2", "mic", 1)]
    windower = Windower(sources, machines, hop_seconds=1.0)
    for source in sources.values():
        source.start()
    while not stopping:
        batch = windower.next_batch(timeout=0.5)
        if batch is None:
            if windower.exhausted:
                break
            continue
        outputs = engine.infer(batch.waveforms)
        ...
"""

from edge_asd.capture.device import DeviceSource
from edge_asd.capture.device_lookup import (
    AudioDeviceError,
    InputDevice,
    find_input_device,
    list_input_devices,
)
from edge_asd.capture.file import FileSource
from edge_asd.capture.ringbuffer import FramesUnavailable, RingBuffer
from edge_asd.capture.source import FAST, REALTIME, Source, SourceHealth
from edge_asd.capture.synthetic import SyntheticSource
from edge_asd.capture.windower import Machine, WindowBatch, Windower, WindowerStats

__all__ = [
    "FAST",
    "REALTIME",
    "AudioDeviceError",
    "DeviceSource",
    "FileSource",
    "FramesUnavailable",
    "InputDevice",
    "Machine",
    "RingBuffer",
    "Source",
    "SourceHealth",
    "SyntheticSource",
    "WindowBatch",
    "Windower",
    "WindowerStats",
    "find_input_device",
    "list_input_devices",
]
