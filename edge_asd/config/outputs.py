"""Where the daemon's results go: MQTT, the outbox, metrics, Home Assistant, evidence, the page.

Sections of the daemon's config (edge_asd.config.schema.Config holds them); strict,
bounded and described like every section.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationError, model_validator

from edge_asd.config.types import (
    EnvName,
    ExistingFile,
    Name,
    NewFile,
    ResolvedPath,
    Strict,
    TopicPrefix,
)


class TlsConfig(Strict):
    """TLS towards the broker."""

    ca_file: ExistingFile | None = Field(
        None, description="CA certificate(s) of the broker (None: the system's CAs)"
    )
    cert_file: ExistingFile | None = Field(None, description="client certificate (mutual TLS)")
    key_file: ExistingFile | None = Field(None, description="client private key (mutual TLS)")
    check_hostname: bool = Field(True, description="check the broker's name in its certificate")


class MqttConfig(Strict):
    """The broker and how to publish to it (topics: see DESIGN.md's MQTT contract)."""

    host: str = Field(min_length=1, description="the broker's host name or address")
    port: int = Field(1883, ge=1, le=65535, description="the broker's port (8883 for TLS)")
    topic_prefix: TopicPrefix = Field("edge-asd", description="first topic levels")
    client_id: Name | None = Field(None, description="MQTT client id (None: edge-asd-<device_id>)")
    keepalive_seconds: int = Field(30, ge=5, le=3600, description="MQTT keepalive interval")
    username: str | None = Field(
        None, min_length=1, description="user name, if the broker wants one"
    )
    password_env: EnvName | None = Field(
        None, description="environment variable holding the password"
    )
    password_file: ExistingFile | None = Field(
        None, description="file holding the password (first line; mode 0600 advised)"
    )
    password_credential: Name | None = Field(
        None,
        description="systemd credential holding the password (LoadCredential=NAME:...; read "
        "from $CREDENTIALS_DIRECTORY/NAME)",
    )
    tls: TlsConfig | None = Field(None, description="TLS settings (None: plain TCP)")
    publish_scores: bool = Field(
        False, description="publish every window's score on {machine}/score (QoS 0)"
    )
    reconnect_min_seconds: float = Field(
        1.0, ge=0.1, le=60, description="first wait before reconnecting"
    )
    reconnect_max_seconds: float = Field(
        60.0, ge=1, le=3600, description="longest wait between reconnection attempts"
    )


class OutboxConfig(Strict):
    """The durable outbox: events wait here until the broker acknowledges them."""

    path: NewFile = Field(description="the SQLite file (created, mode 0600)")
    max_events: int = Field(
        100_000, ge=10, le=10_000_000, description="most events kept; the oldest are dropped"
    )


class MetricsConfig(Strict):
    """Periodic stats on MQTT and an optional Prometheus endpoint."""

    stats_interval_seconds: float = Field(
        60.0, ge=1, le=86400, description="seconds between two `stats` messages"
    )
    prometheus_port: int | None = Field(
        None, ge=1, le=65535, description="serve Prometheus metrics on this port (None: off)"
    )
    prometheus_address: str = Field(
        "127.0.0.1", min_length=1, description="address the Prometheus endpoint listens on"
    )


class HomeAssistantConfig(Strict):
    """Home Assistant MQTT discovery (edge_asd/mqtt/discovery.py): entities appear by themselves."""

    enabled: bool = Field(
        False,
        description="publish discovery configs (retained) so Home Assistant shows a device "
        "with a problem sensor and a score sensor per machine",
    )
    discovery_prefix: TopicPrefix = Field(
        "homeassistant",
        description="Home Assistant's discovery prefix (its MQTT integration's setting)",
    )


class EvidenceConfig(Strict):
    """Event evidence (edge_asd/evidence): the sound of every event, kept within bounds."""

    enabled: bool = Field(
        True,
        description="save each event's audio (FLAC) and a picture (PNG: spectrogram, score "
        "trace against the threshold); the event's `clip` names the FLAC",
    )
    path: ResolvedPath | None = Field(
        None,
        description="folder of the clips (None: 'evidence' beside the outbox file); created, "
        "mode 0700, files 0600; one folder per event, {machine}/{started}_{event_id}; its "
        "path must be short enough for events to name their clips (about 260 characters)",
    )
    max_age_days: float = Field(
        30.0, gt=0, le=3650, description="events older than this lose their evidence folder"
    )
    max_megabytes: float = Field(
        1024.0,
        ge=0.1,
        le=10_000_000,
        description="most space (MB, 10^6 bytes) the evidence takes; past it the oldest "
        "events' folders are deleted, except each machine's newest (an event takes about "
        "0.8 MB)",
    )
    min_free_megabytes: float = Field(
        256.0,
        ge=0,
        le=10_000_000,
        description="no clip is written when its volume has less free space than this (the "
        "event goes out without one; logged once, counted in stats)",
    )


class WebConfig(Strict):
    """The local page (edge_asd/web): each machine's state, score trace, sound and events."""

    enabled: bool = Field(False, description="serve the page and its /api JSON")
    address: str = Field(
        "127.0.0.1",
        min_length=1,
        description="address to listen on; anything but loopback needs a password",
    )
    port: int = Field(8080, ge=1, le=65535, description="port to listen on")
    username: str = Field("edge-asd", min_length=1, description="user name (HTTP Basic)")
    password_env: EnvName | None = Field(
        None, description="environment variable holding the page's password"
    )
    password_file: ExistingFile | None = Field(
        None, description="file holding the page's password (first line; mode 0600 advised)"
    )
    password_credential: Name | None = Field(
        None, description="systemd credential holding the page's password"
    )

    @model_validator(mode="after")
    def _password_rules(self) -> WebConfig:
        """One password source at most; anything reachable from another host needs one
        (there is no default password)."""
        keys = ("password_env", "password_file", "password_credential")
        named = [key for key in keys if getattr(self, key) is not None]
        if len(named) > 1:
            _raise_at(self, named[1], f"expected one password source, but {' and '.join(named)} "
                      "are both set")  # fmt: skip
        if self.enabled and not named and not is_loopback(self.address):
            _raise_at(
                self,
                "address",
                "expected a loopback address (127.0.0.1, ::1, localhost) unless the page has a "
                "password: set web.password_env, web.password_file or web.password_credential",
            )
        return self


def _raise_at(model: BaseModel, key: str, message: str) -> None:
    """Raise a model validator's error as `key`'s own, so the message names its line."""
    raise ValidationError.from_exception_data(
        type(model).__name__,
        [
            {
                "type": "value_error",
                "loc": (key,),
                "input": getattr(model, key),
                "ctx": {"error": ValueError(message)},
            }
        ],
    )


def is_loopback(address: str) -> bool:
    """True for an address only this host reaches: 127.0.0.0/8, ::1 or the name localhost."""
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to any interface
