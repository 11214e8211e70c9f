"""Finding an input device by index or name substring, and listing the inputs."""

from __future__ import annotations

from dataclasses import dataclass

from edge_asd.errors import EXIT_RUNTIME, UserError


class AudioDeviceError(UserError):
    """An input device that cannot be found or opened; the message names it."""

    exit_code = EXIT_RUNTIME


@dataclass(frozen=True)
class InputDevice:
    """A PortAudio device with at least one input channel."""

    index: int
    name: str
    host_api: str
    max_input_channels: int
    default_sample_rate: float
    is_default: bool = False


def list_input_devices() -> list[InputDevice]:
    """Every device PortAudio knows with an input channel, in index order.

    Raises AudioDeviceError when PortAudio (libportaudio2) is missing.
    """
    sd = _sounddevice()
    default_input = sd.default.device[0]
    host_apis = [api["name"] for api in sd.query_hostapis()]
    devices = []
    for info in sd.query_devices():
        if info["max_input_channels"] > 0:
            devices.append(
                InputDevice(
                    index=int(info["index"]),
                    name=str(info["name"]),
                    host_api=host_apis[info["hostapi"]],
                    max_input_channels=int(info["max_input_channels"]),
                    default_sample_rate=float(info["default_samplerate"]),
                    is_default=info["index"] == default_input,
                )
            )
    return devices


def find_input_device(spec: int | str | None) -> InputDevice:
    """The input device `spec` names: an index, a (case-insensitive) name or name substring.

    An exact name wins over substrings; None is the system's default input. Raises
    AudioDeviceError when no input matches, or when several do, listing the candidates.
    """
    devices = list_input_devices()
    if spec is None:
        defaults = [device for device in devices if device.is_default]
        if not defaults:
            raise AudioDeviceError(f"no default input device; inputs: {_names(devices)}")
        return defaults[0]
    if isinstance(spec, int) or spec.strip().isdigit():
        index = int(spec)
        for device in devices:
            if device.index == index:
                return device
        raise AudioDeviceError(f"no input device with index {index}; inputs: {_names(devices)}")
    wanted = spec.strip().lower()
    exact = [device for device in devices if device.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = [device for device in devices if wanted in device.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AudioDeviceError(f"no input device matches {spec!r}; inputs: {_names(devices)}")
    raise AudioDeviceError(
        f"input device {spec!r} is ambiguous: it matches {_names(matches)}; "
        "give more of the name, or the index"
    )


def _names(devices: list[InputDevice]) -> str:
    if not devices:
        return "none (is a microphone connected?)"
    return ", ".join(f"{device.index}: {device.name!r}" for device in devices)


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the Python package loads libportaudio when imported
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}); install libportaudio2"
        ) from None
    return sounddevice
