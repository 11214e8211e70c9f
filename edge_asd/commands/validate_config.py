"""`edge-asd validate-config FILE`: check a daemon config; exit 0, or explain and exit 2.

Beyond the config's own rules (keys, types, ranges, names, files), it reads the model's
`model.yaml` and each machine's calibration, so a calibration made for another model or
label is caught here rather than at the next reboot. Errors of those files keep their own
exit code (3). The MQTT password and the page's (when the page is enabled) are looked up
but never printed.
"""

from __future__ import annotations

import argparse
import sys

from edge_asd.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate-config",
        help="check a daemon config (errors with file, line and key)",
        description="Check a daemon config: every problem is printed with its file, line, "
        "key, value and what was expected; exit code 0 when it is valid, 2 when not.",
    )
    parser.add_argument("file", help="the daemon's YAML config")
    parser.add_argument(
        "--no-files",
        action="store_true",
        help="check the config alone, without reading the model and calibrations",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_asd.config import load_config

    config = load_config(args.file)
    if not args.no_files:
        _check_model_and_calibrations(config)
    _check_password(config)
    print(f"{args.file}: valid")
    for line in summary(config):
        print(f"  {line}")
    return 0


def _check_model_and_calibrations(config) -> None:
    from edge_asd.daemon import load_machines
    from edge_asd.model_file import load_model_info

    info = load_model_info(config.model)
    load_machines(config, info)


def _check_password(config) -> None:
    """Warn (not fail) when a password is only reachable from the service's environment:
    the broker's, and the page's when the page is enabled."""
    from edge_asd.config import resolve_password

    sections = [("mqtt", config.mqtt)] + ([("web", config.web)] if config.web.enabled else [])
    for key, section in sections:
        try:
            resolve_password(section, key=key)
        except UserError as exc:
            print(
                f"warning: {exc} (fine if the service's environment provides it)", file=sys.stderr
            )


def summary(config) -> list[str]:
    """What the config sets up, one line each, secrets left out."""
    mqtt = config.mqtt
    auth = f", user {mqtt.username}" if mqtt.username else ""
    lines = [
        f"device {config.device_id}: model {config.model}, engine {config.engine.kind}",
        f"MQTT {mqtt.host}:{mqtt.port}{' TLS' if mqtt.tls else ''}{auth}, topics "
        f"{mqtt.topic_prefix}/{config.device_id}/...",
        f"outbox {config.outbox.path} (at most {config.outbox.max_events} events)",
    ]
    for source in config.audio.sources:
        detail = getattr(source, "device", None) or getattr(source, "path", None) or "synth"
        lines.append(f"source {source.name}: {source.kind} {detail}")
    for machine in config.machines:
        lines.append(
            f"machine {machine.name}: {machine.source} channel {machine.channel}, "
            f"calibration {machine.calibration}"
        )
    return lines
