"""Checks across fields of a valid-looking config: references, uniqueness, pairs of settings.

Each problem keeps the key path it is about, so its message can name the YAML line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from edge_asd.config.schema import Config, FileSource
from edge_asd.config.yaml_lines import KeyPath


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config: where (key path), the value found, what was expected."""

    path: KeyPath
    message: str
    value: Any = None
    show_value: bool = True


def cross_checks(config: Config) -> list[Problem]:
    """Every problem pydantic's per-field validation cannot see, in the file's order."""
    return [
        *_unique_names(config),
        *_machine_sources(config),
        *_one_pacing(config),
        *_fault_times(config),
        *_mqtt_pairs(config),
        *_evidence_path_length(config),
    ]


def _unique_names(config: Config) -> list[Problem]:
    problems = []
    for section, items in (("audio", config.audio.sources), ("machines", config.machines)):
        counts = Counter(item.name for item in items)
        for index, item in enumerate(items):
            if counts[item.name] > 1:
                path = (
                    ("audio", "sources", index, "name")
                    if section == "audio"
                    else (
                        "machines",
                        index,
                        "name",
                    )
                )
                problems.append(
                    Problem(path, "expected a unique name, but it is used twice", item.name)
                )
    return problems


def _machine_sources(config: Config) -> list[Problem]:
    problems = []
    names = [source.name for source in config.audio.sources]
    for index, machine in enumerate(config.machines):
        if machine.source not in names:
            problems.append(
                Problem(
                    ("machines", index, "source"),
                    f"expected the name of a source in audio.sources ({', '.join(names)})",
                    machine.source,
                )
            )
            continue
        channels = _source_channels(config.source(machine.source))
        if channels is not None and machine.channel >= channels:
            problems.append(
                Problem(
                    ("machines", index, "channel"),
                    f"expected a channel below {channels}: source {machine.source!r} has "
                    f"{channels} channel(s), numbered from 0",
                    machine.channel,
                )
            )
    return problems


def _one_pacing(config: Config) -> list[Problem]:
    """The windower takes all sources at one pace: live, or as fast as scoring goes."""
    sources = config.audio.sources
    live = [source.realtime for source in sources]
    if all(live) or not any(live):
        return []
    index = live.index(not live[0])
    return [
        Problem(
            ("audio", "sources", index, "realtime"),
            f"expected realtime: {str(live[0]).lower()} like source {sources[0].name!r}: "
            "sources are either all live (devices, paced replays) or all as fast as possible",
            live[index],
        )
    ]


def _source_channels(source: Any) -> int | None:
    if isinstance(source, FileSource):
        import soundfile  # only for file sources

        try:
            return soundfile.info(str(source.path)).channels
        except (RuntimeError, OSError):
            return None  # unreadable: the source itself reports it when it opens
    return source.channels


def _fault_times(config: Config) -> list[Problem]:
    problems = []
    for s_index, source in enumerate(config.audio.sources):
        for f_index, fault in enumerate(getattr(source, "faults", ())):
            if fault.end_s <= fault.start_s:
                problems.append(
                    Problem(
                        ("audio", "sources", s_index, "faults", f_index, "end_s"),
                        f"expected an end after the start ({fault.start_s})",
                        fault.end_s,
                    )
                )
    return problems


def _mqtt_pairs(config: Config) -> list[Problem]:
    mqtt = config.mqtt
    problems = []
    sources = [
        key
        for key in ("password_env", "password_file", "password_credential")
        if getattr(mqtt, key) is not None
    ]
    if len(sources) > 1:
        problems.append(
            Problem(
                ("mqtt", sources[1]),
                f"expected one password source, but {' and '.join(sources)} are both set",
                show_value=False,
            )
        )
    if sources and mqtt.username is None:
        problems.append(
            Problem(("mqtt", sources[0]), "a password needs mqtt.username too", show_value=False)
        )
    if mqtt.reconnect_max_seconds < mqtt.reconnect_min_seconds:
        problems.append(
            Problem(
                ("mqtt", "reconnect_max_seconds"),
                f"expected at least reconnect_min_seconds ({mqtt.reconnect_min_seconds})",
                mqtt.reconnect_max_seconds,
            )
        )
    tls = mqtt.tls
    if tls is not None and (tls.cert_file is None) != (tls.key_file is None):
        missing = "key_file" if tls.key_file is None else "cert_file"
        problems.append(
            Problem(
                ("mqtt", "tls", missing),
                "missing: a client certificate needs both cert_file and key_file",
                show_value=False,
            )
        )
    return problems


def _evidence_path_length(config: Config) -> list[Problem]:
    """An event names its clip: a long evidence folder would make events too large to send."""
    from edge_asd.evidence.layout import longest_clip_json_chars
    from edge_asd.mqtt.payloads import MAX_CLIP_JSON_CHARS

    root = config.evidence_path
    chars = longest_clip_json_chars(root)
    if not config.evidence.enabled or chars <= MAX_CLIP_JSON_CHARS:
        return []
    key = ("evidence", "path") if config.evidence.path is not None else ("outbox", "path")
    return [
        Problem(
            key,
            f"expected a shorter evidence folder: a clip's path under {root} takes up to "
            f"{chars} characters in an event's JSON, at most {MAX_CLIP_JSON_CHARS} fit "
            "(set evidence.path to a shorter folder)",
            str(root),
            show_value=False,
        )
    ]
