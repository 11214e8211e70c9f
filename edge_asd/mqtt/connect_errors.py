"""Why a connection to the MQTT broker failed, and what to change: one sentence per cause.

A failure surfaces in one of three places in paho: an exception from the TCP connect or
the TLS handshake (`explain_exception`), a CONNACK that refuses (`explain_refusal`), or
the connection closed before any CONNACK came (`explain_closed`). Each returns
"<cause>: <fix>", naming the config key to change. The cause is stable across retries of
the same fault, so a caller can log it once and again only when it changes.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time

from edge_asd.config.outputs import MqttConfig

# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code gives them.
NOT_YET_VALID, EXPIRED = 9, 10
SELF_SIGNED = 18  # the broker's certificate is its own issuer
UNKNOWN_ISSUER = {2, 19, 20, 21}  # no trusted CA in ca_file signed the chain
NAME_MISMATCH = {62, 64}  # hostname, IP address
CONNECT_TIMEOUT_SECONDS = 5.0  # paho's TCP connect and TLS handshake, and the probe's
MAX_NAMES = 4  # certificate names quoted in a cause

FIX_CA = (
    "set mqtt.tls.ca_file to the CA certificate that signed the broker's certificate "
    "(mosquitto: its listener's `cafile`)"
)
PASSWORD_KEYS = "password_env, password_file or password_credential"


def explain_exception(exc: BaseException | None, config: MqttConfig) -> str:
    """The cause and fix of an exception raised while connecting (socket, DNS or TLS)."""
    where = f"{config.host}:{config.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _explain_certificate(exc, config)
    if isinstance(exc, socket.gaierror):
        return (
            f"the host name {config.host!r} does not resolve ({exc.strerror}): check "
            "mqtt.host's spelling, /etc/hosts and the DNS server, or give the broker's address"
        )
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"nothing listens on {where} (connection refused): check mqtt.port and that the "
            "broker runs and listens on that address (a `listener` line in mosquitto.conf)"
        )
    if isinstance(exc, TimeoutError):
        if "handshake" in str(exc):
            return (
                f"{where} accepted the connection but did not answer the TLS handshake in "
                f"{CONNECT_TIMEOUT_SECONDS:g} s: check mqtt.port is the broker's TLS listener"
            )
        return (
            f"{where} did not answer in {CONNECT_TIMEOUT_SECONDS:g} s: the host is down or a "
            "firewall drops the packets; check mqtt.host, mqtt.port and the firewall"
        )
    if config.tls is not None and isinstance(exc, (ssl.SSLError, ConnectionResetError)):
        return _explain_handshake(exc, config)
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"no route to {where} ({exc.strerror}): check mqtt.host and this device's network"
    detail = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc or "")
    return f"cannot reach {where} ({detail or 'no reason given'}): check mqtt.host and mqtt.port"


def explain_refusal(reason: str, config: MqttConfig) -> str:
    """The cause and fix of a CONNACK that refused the connection (`reason`: paho's text)."""
    if reason in ("Not authorized", "Bad user name or password"):
        if config.username is None:
            return (
                f"the broker refused an anonymous login ({reason}): set mqtt.username and a "
                f"password ({PASSWORD_KEYS})"
            )
        return (
            f"the broker refused the username {config.username!r} or its password ({reason}): "
            f"check mqtt.username and the password its {PASSWORD_KEYS} gives, and the "
            "broker's password file"
        )
    if reason == "Client identifier not valid":
        return f"the broker refused the client id ({reason}): set mqtt.client_id to one it takes"
    return f"the broker refused the connection ({reason}): see the broker's log"


def explain_closed(reason: str, config: MqttConfig) -> str:
    """The cause and fix of a connection closed before the broker's CONNACK came."""
    where = f"{config.host}:{config.port}"
    if reason == "Keep alive timeout":
        return (
            f"{where} accepted the connection but sent no MQTT answer in "
            f"{config.keepalive_seconds} s: check mqtt.host and mqtt.port name an MQTT broker"
            + ("" if config.tls else " (or it expects TLS: add mqtt.tls)")
        )
    if reason == "Protocol error":
        return (
            f"{where} answered, but not in MQTT (a web server or a proxy?): check mqtt.host "
            "and mqtt.port"
        )
    if config.tls is None:
        fix = "it may expect TLS: add mqtt.tls (or set mqtt.port to its plain listener)"
    elif config.tls.cert_file is None:
        fix = "it may require a client certificate: set mqtt.tls.cert_file and key_file"
    else:
        fix = "it may refuse this client certificate: see the broker's log"
    return f"{where} closed the connection before answering ({reason}); {fix}"


def _explain_certificate(exc: ssl.SSLCertVerificationError, config: MqttConfig) -> str:
    code, message = exc.verify_code, (exc.verify_message or "").rstrip(".")
    ca = f"the CA file {config.tls.ca_file}" if config.tls and config.tls.ca_file else None
    if code in NAME_MISMATCH:
        names = certificate_names(config)
        named = f"names {', '.join(names)}" if names else "does not name it"
        first = names[0] if names else "a name the certificate carries"
        return (
            f"the broker's certificate {named}, not {config.host} ({message}): set mqtt.host "
            f"to {first} (and make it resolve to the broker, e.g. in /etc/hosts) or have the "
            f"broker's certificate name {config.host}"
        )
    if code in UNKNOWN_ISSUER:
        signer = f"{ca} did not sign" if ca else "none of the system CAs signed"
        return f"{signer} the broker's certificate ({message}): {FIX_CA}"
    if code == SELF_SIGNED:
        return (
            f"the broker's certificate is self-signed and {ca or 'the system CAs'} does not "
            f"hold it ({message}): set mqtt.tls.ca_file to that certificate, or sign it by a CA"
        )
    if code in (EXPIRED, NOT_YET_VALID):
        when = "has expired" if code == EXPIRED else "is not valid yet"
        now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        return (
            f"the broker's certificate {when} by this device's clock ({now}): renew the "
            "certificate on the broker, or set this device's clock (NTP) if it is wrong"
        )
    return f"the broker's certificate failed verification ({message}): check mqtt.tls"


def _explain_handshake(exc: OSError, config: MqttConfig) -> str:
    where = f"{config.host}:{config.port}"
    reason = getattr(exc, "reason", None) or ""
    if "ALERT" in reason:  # the broker ended the handshake: it refused our certificate
        return (
            f"the broker refused this device's TLS handshake ({reason}): check "
            "mqtt.tls.cert_file and key_file are a client certificate its CA signed"
        )
    detail = reason or exc.strerror or str(exc)
    return (
        f"the TLS handshake with {where} failed ({detail}): it may not be a TLS listener; "
        "set mqtt.port to the broker's TLS port (often 8883) or remove mqtt.tls"
    )


def certificate_names(config: MqttConfig) -> list[str]:
    """The names in the broker's certificate (subjectAltName, else CN); [] when unknown.

    A second handshake, verified against mqtt.tls.ca_file but not against mqtt.host, so
    that a name mismatch can say which name to use. Never raises.
    """
    tls = config.tls
    try:
        context = ssl.create_default_context(
            cafile=str(tls.ca_file) if tls and tls.ca_file else None
        )
        context.check_hostname = False
        if tls and tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        address = (config.host, config.port)
        with (
            socket.create_connection(address, timeout=CONNECT_TIMEOUT_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=config.host) as wrapped,
        ):
            certificate = wrapped.getpeercert() or {}
    except (OSError, ValueError):
        return []
    names = [
        value
        for kind, value in certificate.get("subjectAltName", ())
        if kind in ("DNS", "IP Address")
    ]
    if not names:
        names = [v for rdn in certificate.get("subject", ()) for k, v in rdn if k == "commonName"]
    return names[:MAX_NAMES]
