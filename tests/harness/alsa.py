"""An ALSA virtual microphone: PortAudio captures samples that a test wrote to a raw file.

The ALSA `file` plugin reads `infile` instead of its slave's capture (the `null` device),
and a `plug` in front of it converts to whatever the stream asks for. Both are declared in
an `.asoundrc` under a temporary HOME. The plugin delivers samples as fast as they are read
(no real-time pacing), and past the end of the file it returns stale data, so tests write
more samples than they read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

DEVICE_NAME = "edgeasd_mic"

ASOUNDRC = """\
pcm.edgeasd_raw {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
pcm.{name} {{
    type plug
    slave {{
        pcm "edgeasd_raw"
        format S16_LE
        rate {rate}
        channels {channels}
    }}
    hint {{
        show on
        description "edge-asd test microphone"
    }}
}}
"""


@dataclass(frozen=True)
class VirtualMic:
    name: str
    home: Path
    sample_rate: int
    channels: int
    samples_int16: np.ndarray  # [frames, channels], what the device will deliver

    @property
    def samples_float(self) -> np.ndarray:
        return self.samples_int16.astype(np.float32) / 32768.0


def reinitialise_portaudio() -> None:
    """Make PortAudio re-read the ALSA configuration (device list) in this process."""
    import sounddevice

    sounddevice._terminate()
    sounddevice._initialize()


@pytest.fixture
def virtual_mic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Factory: virtual_mic(samples float [frames, channels], rate) -> VirtualMic.

    Sets HOME for this test (so subprocesses inherit it) and re-initialises PortAudio.
    """

    def make(samples: np.ndarray, sample_rate: int = 16000) -> VirtualMic:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim == 1:
            samples = samples[:, None]
        pcm = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype("<i2")
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        infile = home / "mic.raw"
        pcm.tofile(infile)
        (home / ".asoundrc").write_text(
            ASOUNDRC.format(
                infile=infile, name=DEVICE_NAME, rate=sample_rate, channels=pcm.shape[1]
            )
        )
        monkeypatch.setenv("HOME", str(home))
        reinitialise_portaudio()
        return VirtualMic(DEVICE_NAME, home, sample_rate, pcm.shape[1], pcm)

    yield make
    monkeypatch.undo()
    reinitialise_portaudio()
