"""How a calibration heard the machine: channel, source sample rates, resampling, level.

A threshold holds only for sound taken the way the calibration took it. Scoring another
channel of a multi-channel recording, the mean of all channels instead of one, audio
recorded at another rate, or a much louder or quieter input gives scores on another
scale: a normal training clip scored as the mean of 8 channels read 30x the threshold
of a calibration made on channel 0. So `calibration.yaml` records how the machine was
heard (`input`), `edge-asd score` takes the calibration's channel unless told otherwise,
and `score` and the daemon warn, once per recording or machine, when what they hear
differs (`differences`).

The level (median window level, dB, edge_asd.scoring.features) is recorded under `level`
by edge_asd.calibration.build; a median offset beyond LEVEL_WARN_DB is warned about here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edge_asd.audio import AudioInfo

# Beyond this the input gain, the microphone's place or the machine changed: 6 dB is
# twice the amplitude, well past the +-3 dB gain changes calibration checks as normal.
LEVEL_WARN_DB = 6.0


@dataclass(frozen=True)
class HeardAs:
    """How the calibration's audio was taken.

    `channel`: the channel used, from 0, or None for the mean of all channels;
    `channels`: the channel counts of its recordings (sorted, distinct); `sample_rates_hz`:
    their own sample rates (sorted, distinct); `model_rate_hz`: the rate they were
    resampled to where they differed; `device`: the input device for a live recording.
    """

    channel: int | None
    channels: tuple[int, ...]
    sample_rates_hz: tuple[int, ...]
    model_rate_hz: int
    device: str | None = None

    @property
    def resampled(self) -> bool:
        return any(rate != self.model_rate_hz for rate in self.sample_rates_hz)

    def to_dict(self) -> dict[str, Any]:
        """The `input` mapping of calibration.yaml (edge_asd.calibration.schema.InputYaml)."""
        return {
            "channel": self.channel,
            "channels": list(self.channels),
            "sample_rates_hz": list(self.sample_rates_hz),
            "model_rate_hz": self.model_rate_hz,
            "resampled": self.resampled,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeardAs:
        return cls(
            data["channel"],
            tuple(data["channels"]),
            tuple(data["sample_rates_hz"]),
            data["model_rate_hz"],
            data.get("device"),
        )

    def describe(self) -> str:
        """E.g. `channel 0 of 8-channel audio at 16000 Hz` or `mono audio at 48000 Hz,
        resampled to 16000 Hz`."""
        counts = "/".join(str(c) for c in self.channels)
        if self.channels == (1,):
            taken = "mono audio"
        elif self.channel is None:
            taken = f"the mean of all channels of {counts}-channel audio"
        else:
            taken = f"channel {self.channel} of {counts}-channel audio"
        rates = "/".join(str(r) for r in self.sample_rates_hz)
        where = f" from {self.device}" if self.device else ""
        resampled = f", resampled to {self.model_rate_hz} Hz" if self.resampled else ""
        return f"{taken} at {rates} Hz{where}{resampled}"


def heard_from_files(
    infos: Iterable[AudioInfo], channel: int | None, model_rate_hz: int
) -> HeardAs:
    """The record of a calibration made from files with these headers."""
    infos = list(infos)
    return HeardAs(
        channel,
        tuple(sorted({i.channels for i in infos})),
        tuple(sorted({i.sample_rate for i in infos})),
        model_rate_hz,
    )


def channel_for(heard: HeardAs | None, asked: int | None) -> int | None:
    """The channel to score: the one asked for, else the calibration's (None: the mean)."""
    if asked is not None or heard is None:
        return asked
    return heard.channel


def differences(heard: HeardAs, channel: int | None, info: AudioInfo) -> list[str]:
    """Why a file taken at `channel` (None: the mean) is not heard as the calibration
    heard its machine: one sentence per difference, empty when there is none."""
    said = []
    if channel != heard.channel:
        now = "the mean of its channels" if channel is None else f"channel {channel}"
        then = "the mean of all channels" if heard.channel is None else f"channel {heard.channel}"
        fix = "drop --channel" if heard.channel is None else f"use --channel {heard.channel}"
        said.append(
            f"scored as {now}, but the calibration heard {then}: its scores are on another "
            f"scale ({fix}, or calibrate on {now})"
        )
    elif channel is None and info.channels not in heard.channels:
        said.append(
            f"has {info.channels} channel(s), the calibration's recordings "
            f"{'/'.join(map(str, heard.channels))}: their mean is another signal"
        )
    if info.sample_rate not in heard.sample_rates_hz:
        said.append(
            f"recorded at {info.sample_rate} Hz, the calibration's recordings at "
            f"{'/'.join(map(str, heard.sample_rates_hz))} Hz: another recorder or setting, "
            "its band and noise may differ"
        )
    return said


def level_difference(offset_db: float | None) -> str | None:
    """A sentence when a median level offset (dB, this audio minus the calibration's) is
    beyond LEVEL_WARN_DB, else None."""
    if offset_db is None or abs(offset_db) <= LEVEL_WARN_DB:
        return None
    louder = "louder" if offset_db > 0 else "quieter"
    return (
        f"{abs(offset_db):.1f} dB {louder} than at calibration: the input gain, the "
        "microphone's place or the machine changed; scores may not be comparable"
    )
