"""`edge-asd devices`: the audio inputs PortAudio sees, to pick one for a config."""

from __future__ import annotations

import argparse
import json

from edge_asd.audio import SAMPLE_RATE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="list audio inputs",
        description=(
            "List the audio inputs: index, name, input channels and default rate. A config "
            "names a device by index or by a unique part of its name. `16k` says whether "
            f"it captures at {SAMPLE_RATE} Hz itself (otherwise edge-asd resamples)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per device")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_asd.capture.device_lookup import list_input_devices

    devices = list_input_devices()
    rows = [
        {
            "index": device.index,
            "name": device.name,
            "host_api": device.host_api,
            "input_channels": device.max_input_channels,
            "default_rate": round(device.default_sample_rate),
            "captures_16k": _captures_at(device.index, SAMPLE_RATE),
            "default": device.is_default,
        }
        for device in devices
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print("no audio inputs found (is a microphone connected?)")
        return 0
    print(f"{'index':>5}  {'channels':>8}  {'rate':>6}  {'16k':>3}  name")
    for row in rows:
        marker = "  (default)" if row["default"] else ""
        print(
            f"{row['index']:>5}  {row['input_channels']:>8}  {row['default_rate']:>6}  "
            f"{'yes' if row['captures_16k'] else 'no':>3}  {row['name']}{marker}"
        )
    return 0


def _captures_at(index: int, sample_rate: int) -> bool:
    import sounddevice as sd

    try:
        sd.check_input_settings(device=index, channels=1, dtype="int16", samplerate=sample_rate)
    except (sd.PortAudioError, ValueError):
        return False
    return True
