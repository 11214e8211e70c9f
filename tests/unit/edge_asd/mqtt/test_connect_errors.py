"""Why the publisher cannot connect: each cause named once, with the fix, and counted.

Real sockets and a real mosquitto where they run here: a port nothing listens on, a name
under `.invalid`, a listener that never answers, a broker with a password file, TLS and
plain listeners crossed. Certificate dates are checked on the classification alone (an
expired certificate needs a clock or an openssl this container lacks); the name mismatch
and the wrong CA file run against a daemon in tests/system/test_mqtt_connect_causes.py.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from edge_asd.config.outputs import MqttConfig, TlsConfig
from edge_asd.mosquitto import free_port
from edge_asd.mqtt.connect_errors import explain_exception
from edge_asd.mqtt.outbox import Outbox
from edge_asd.mqtt.publisher import Publisher
from tests.harness.broker import Broker
from tests.harness.durable_subscriber import KEEP_USER
from tests.unit.edge_asd.mqtt.test_publisher import make_certificates, make_publisher, wait_until

PUBLISHER_LOG = "edge_asd.mqtt.publisher"


def warnings(caplog: pytest.LogCaptureFixture, publisher: Publisher) -> list[str]:
    """The publisher's WARNING lines about `publisher`'s broker, in order."""
    where = f"{publisher.config.host}:{publisher.config.port}"
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == PUBLISHER_LOG and r.levelno == logging.WARNING and where in r.getMessage()
    ]


def fail_times(publisher: Publisher, attempts: int, timeout_s: float = 30.0) -> str:
    """Start `publisher`, wait for `attempts` failed attempts, stop it; the last cause."""
    publisher.start()
    try:
        wait_until(lambda: publisher.status().failures >= attempts, timeout_s)
        assert not publisher.connected
    finally:
        publisher.stop(flush_timeout_s=0)
    return publisher.status().last_error or ""


def test_a_port_nothing_listens_on_is_named_once_over_retries(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, PUBLISHER_LOG)
    port = free_port()
    publisher = make_publisher(port, tmp_path / "o.sqlite")
    cause = fail_times(publisher, attempts=3)
    assert cause.startswith(f"nothing listens on 127.0.0.1:{port} (connection refused): check ")
    assert "mqtt.port" in cause
    assert warnings(caplog, publisher) == [
        f"MQTT: cannot connect to 127.0.0.1:{port}: {cause} (retrying with backoff)"
    ]


def test_an_unknown_host_name_says_it_does_not_resolve(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, PUBLISHER_LOG)
    config = MqttConfig(host="broker.plant.invalid", port=1883, reconnect_max_seconds=1)
    publisher = Publisher(config, "dev-1", Outbox(tmp_path / "o.sqlite"))
    cause = fail_times(publisher, attempts=2)
    assert cause.startswith("the host name 'broker.plant.invalid' does not resolve (")
    assert "check mqtt.host's spelling, /etc/hosts and the DNS server" in cause
    assert len(warnings(caplog, publisher)) == 1


def test_a_listener_that_never_answers_says_what_it_waited_for(tmp_path: Path):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never reads
    port = silent.getsockname()[1]
    ca_file = make_certificates(tmp_path)["ca.crt"]
    plain = make_publisher(port, tmp_path / "p.sqlite", keepalive_seconds=5)
    tls = make_publisher(port, tmp_path / "t.sqlite", tls=TlsConfig(ca_file=ca_file))
    try:
        plain.start()
        tls.start()
        wait_until(lambda: plain.status().failures and tls.status().failures, 30)
    finally:
        plain.stop(flush_timeout_s=0)
        tls.stop(flush_timeout_s=0)
        silent.close()
    assert plain.status().last_error.startswith(
        f"127.0.0.1:{port} accepted the connection but sent no MQTT answer in 5 s: "
    )
    assert "(or it expects TLS: add mqtt.tls)" in plain.status().last_error
    assert tls.status().last_error.startswith(
        f"127.0.0.1:{port} accepted the connection but did not answer the TLS handshake in 5 s"
    )


def test_a_refused_login_names_the_username_and_never_the_password(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, PUBLISHER_LOG)
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "edge", "other"], check=True)
    extra = f"allow_anonymous false\npassword_file {passwords}\n{KEEP_USER}"
    broker = Broker(tmp_path / "broker", extra_config=extra).start()
    try:
        wrong = make_publisher(broker.port, tmp_path / "w.sqlite", username="edge")
        anonymous = make_publisher(broker.port, tmp_path / "a.sqlite", client_id="anon")
        wrong_cause = fail_times(wrong, attempts=3)
        anonymous_cause = fail_times(anonymous, attempts=1)
    finally:
        broker.stop()
    assert wrong_cause == (
        "the broker refused the username 'edge' or its password (Not authorized): check "
        "mqtt.username and the password its password_env, password_file or "
        "password_credential gives, and the broker's password file"
    )
    assert anonymous_cause.startswith("the broker refused an anonymous login (Not authorized)")
    assert "set mqtt.username" in anonymous_cause
    logged = warnings(caplog, wrong)
    assert sum(wrong_cause in line for line in logged) == 1  # three refusals, one line
    assert "s3cret" not in caplog.text


def test_tls_and_plain_crossed_say_which_the_port_speaks(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, PUBLISHER_LOG)
    certs = make_certificates(tmp_path)
    tls_only = Broker(
        tmp_path / "tls",
        extra_config=f"cafile {certs['ca.crt']}\ncertfile {certs['server.crt']}\n"
        f"keyfile {certs['server.key']}\n{KEEP_USER}",
    ).start()
    plain_only = Broker(tmp_path / "plain").start()
    try:
        plain_to_tls = make_publisher(tls_only.port, tmp_path / "a.sqlite")
        tls = TlsConfig(ca_file=certs["ca.crt"])
        tls_to_plain = make_publisher(plain_only.port, tmp_path / "b.sqlite", tls=tls)
        plain_cause = fail_times(plain_to_tls, attempts=2)
        tls_cause = fail_times(tls_to_plain, attempts=2)
    finally:
        tls_only.stop()
        plain_only.stop()
    assert plain_cause.startswith(
        f"127.0.0.1:{tls_only.port} closed the connection before answering ("
    )
    assert plain_cause.endswith("it may expect TLS: add mqtt.tls (or set mqtt.port to its "
                                "plain listener)")  # fmt: skip
    assert re.match(
        rf"the TLS handshake with 127\.0\.0\.1:{plain_only.port} failed \(.+\): it may not "
        r"be a TLS listener; set mqtt\.port to the broker's TLS port \(often 8883\) or "
        r"remove mqtt\.tls$",
        tls_cause,
    ), tls_cause
    assert len(warnings(caplog, plain_to_tls)) == 1 and len(warnings(caplog, tls_to_plain)) == 1


def test_connected_after_failures_logs_their_count_and_a_new_outage_is_news_again(
    tmp_path: Path, caplog
):
    caplog.set_level(logging.INFO, PUBLISHER_LOG)
    broker = Broker(tmp_path / "broker")  # not started: down at boot
    publisher = make_publisher(broker.port, tmp_path / "o.sqlite")
    try:
        publisher.start()
        wait_until(lambda: publisher.status().failures >= 2)
        broker.start()
        wait_until(lambda: publisher.connected)
        failed = publisher.status().failures
        broker.stop()
        wait_until(lambda: publisher.status().failures > failed)
    finally:
        publisher.stop(flush_timeout_s=0)
        broker.stop()
    refused = f"MQTT: cannot connect to 127.0.0.1:{broker.port}: nothing listens on"
    lines = [r.getMessage() for r in caplog.records if r.name == PUBLISHER_LOG]
    connected = f"MQTT: connected to 127.0.0.1:{broker.port} after {failed} failed attempt(s)"
    assert connected in lines
    assert [line.startswith(refused) for line in lines].count(True) == 2  # before and after
    assert lines.index(connected) < max(i for i, x in enumerate(lines) if x.startswith(refused))
    assert publisher.status().last_error.startswith("nothing listens on")


def verification_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


CA = Path(__file__)
VERIFY_FAILURES = [  # OpenSSL's verify code, its message, how the cause starts
    (10, "certificate has expired", "the broker's certificate has expired by this device's"),
    (9, "certificate is not yet valid", "the broker's certificate is not valid yet by this"),
    (18, "self-signed certificate", f"the broker's certificate is self-signed and the CA file "
                                    f"{CA} does not hold it"),
    (20, "unable to get local issuer", f"the CA file {CA} did not sign the broker's"),
    (23, "certificate revoked", "the broker's certificate failed verification (certificate "
                                "revoked): check mqtt.tls"),
]  # fmt: skip


@pytest.mark.parametrize(("code", "message", "says"), VERIFY_FAILURES)
def test_each_certificate_verification_failure_names_its_reason_and_fix(code, message, says):
    config = MqttConfig(host="10.0.0.5", port=8883, tls=TlsConfig(ca_file=CA))
    cause = explain_exception(verification_error(code, message), config)
    assert cause.startswith(says), cause
    if code in (9, 10):
        assert time.strftime("%Y-%m-%d", time.gmtime()) in cause  # the clock it judged by
        assert "set this device's clock (NTP)" in cause


def test_an_unknown_issuer_without_a_ca_file_names_the_system_cas():
    config = MqttConfig(host="broker.example", port=8883, tls=TlsConfig())
    cause = explain_exception(verification_error(20, "unable to get local issuer"), config)
    assert cause.startswith("none of the system CAs signed the broker's certificate")
