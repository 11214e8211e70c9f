"""A paho-mqtt client made from the config: identity, credentials, TLS, last will, backoff.

The publisher (edge_asd/mqtt/publisher.py) sets its callbacks and drives it. The last will
is the retained `available offline`, so the broker says the daemon is gone when it dies.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from edge_asd.config.outputs import MqttConfig, TlsConfig
from edge_asd.errors import ConfigError
from edge_asd.mqtt import connect_errors
from edge_asd.mqtt.payloads import AVAILABLE_OFFLINE


def make_client(
    config: MqttConfig, device_id: str, password: str | None, available_topic: str
) -> mqtt.Client:
    """A client (callback API 2, clean session) not yet connected; ConfigError on bad TLS files."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=config.client_id or f"edge-asd-{device_id}",
        clean_session=True,
    )
    if config.username is not None:
        client.username_pw_set(config.username, password)
    if config.tls is not None:
        _set_tls(client, config.tls)
    client.will_set(available_topic, AVAILABLE_OFFLINE, qos=1, retain=True)
    # paho's hints say int; its backoff arithmetic (doubling, min with the maximum) is
    # fine with the seconds as floats.
    client.reconnect_delay_set(config.reconnect_min_seconds, config.reconnect_max_seconds)
    client.connect_timeout = connect_errors.CONNECT_TIMEOUT_SECONDS
    return client


def _set_tls(client: mqtt.Client, tls: TlsConfig) -> None:
    """TLS with certificate checks; ConfigError when a certificate or key cannot be used."""
    try:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"mqtt.tls: cannot use the certificate files ({exc}); check ca_file, cert_file "
            "and key_file (PEM, the key matching the certificate)"
        ) from None
    client.tls_insecure_set(not tls.check_hostname)
