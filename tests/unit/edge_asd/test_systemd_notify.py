"""The sd_notify protocol against a real datagram socket, as systemd listens."""

from __future__ import annotations

import socket
from pathlib import Path

from edge_asd.systemd_notify import Notifier, notify


def listening_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    return sock


def test_ready_and_watchdog_reach_the_notify_socket(tmp_path: Path):
    path = tmp_path / "notify"
    with listening_socket(path) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "20000000"})
        notifier.ready(status="scoring 2 machines")
        notifier.watchdog()
        notifier.watchdog()  # within half the 20 s interval: not sent again
        notifier.stopping()
        got = [sock.recv(1024).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=scoring 2 machines", "WATCHDOG=1", "STOPPING=1"]
    assert notifier.watchdog_interval_s == 10.0


def test_abstract_socket_names_are_supported():
    name = f"edge-asd-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"READY=1"


def test_without_notify_socket_nothing_is_sent_and_nothing_fails():
    assert not notify("READY=1", {})
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready()
    notifier.watchdog()


def test_a_watchdog_meant_for_another_process_is_not_fed(tmp_path: Path):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "x"), "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval_s == float("inf")
