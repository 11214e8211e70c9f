"""deploy/jetson/edge-asd.service: valid for systemd, and the settings the service relies on.

`systemd-analyze verify` runs against a temporary root holding the unit, a stand-in for the
ExecStart program and a copy of this machine's system units (it needs them to resolve
dependencies); no systemd needs to be running.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from edge_asd.engines.engine_cache import default_cache_dir

REPO = Path(__file__).resolve().parents[3]
UNIT = REPO / "deploy" / "jetson" / "edge-asd.service"
CONFIG = REPO / "deploy" / "jetson" / "config.example.yaml"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def settings(path: Path = UNIT) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values, in order (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def exec_start() -> list[str]:
    return settings()["Service"]["ExecStart"][0].split()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.skipif(not SYSTEM_UNITS.is_dir(), reason=f"no {SYSTEM_UNITS} to verify against")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    program = tmp_path / exec_start()[0].lstrip("/")
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    (tmp_path / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    unit_dir = tmp_path / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    shutil.copy(UNIT, unit_dir / UNIT.name)
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={tmp_path}", f"/etc/systemd/system/{UNIT.name}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify reports unknown keys and bad values on stderr but may still exit 0
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_service_tells_systemd_when_ready_and_is_watched() -> None:
    service = settings()["Service"]
    assert service["Type"] == ["notify"]
    assert int(service["WatchdogSec"][0]) > 0
    assert service["Restart"] == ["on-failure"]
    unit = settings()["Unit"]
    assert int(unit["StartLimitBurst"][0]) >= 1
    assert int(unit["StartLimitIntervalSec"][0]) > 0


def test_mqtt_password_is_a_credential_from_a_root_only_file() -> None:
    service = settings()["Service"]
    assert service["LoadCredential"] == ["mqtt-password:/etc/edge-asd/mqtt-password"]
    text = CONFIG.read_text()
    assert "# password_credential: mqtt-password" in text, "the template shows how"
    assert "password" not in yaml.safe_load(text)["mqtt"], "never a password in the config"


def test_hardening_keeps_the_sound_card_and_gpu_reachable() -> None:
    service = settings()["Service"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["ProtectHome"] == ["yes"] and service["PrivateTmp"] == ["yes"]
    assert "/var/lib/edge-asd" in service["ReadWritePaths"]
    groups = service["SupplementaryGroups"][0].split()
    assert {"audio", "video"} <= set(groups)
    # each of these would hide /dev/snd and the Jetson GPU nodes from the service
    assert service.get("PrivateDevices", ["no"]) == ["no"]
    assert "DevicePolicy" not in service and "DeviceAllow" not in service
    assert "ProtectClock" not in service, "implies a device allow-list on systemd < 253"
    assert "PrivateUsers" not in service, "would hide the audio/video group of device nodes"


def test_engine_cache_of_the_service_is_where_it_may_write(monkeypatch: pytest.MonkeyPatch) -> None:
    service = settings()["Service"]
    for assignment in service["Environment"]:
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    cache = default_cache_dir()
    writable = [Path(p) for p in service["ReadWritePaths"]]
    assert any(cache.is_relative_to(p) for p in writable), cache
    assert f"--cache-dir {cache}" in (REPO / "deploy/jetson/README.md").read_text()


def test_exec_start_is_a_valid_edge_asd_command_line() -> None:
    from edge_asd.cli import build_parser

    program, *args = exec_start()
    assert program == "/opt/edge-asd/venv/bin/edge-asd"
    parsed = build_parser().parse_args(args)  # exits 2 on an unknown command or option
    assert parsed.command == "run"
    assert parsed.config == "/etc/edge-asd/config.yaml"


def test_example_config_is_valid_once_its_files_exist(tmp_path: Path) -> None:
    from edge_asd.config import load_config

    state = tmp_path / "var-lib-edge-asd"
    text = CONFIG.read_text().replace("/var/lib/edge-asd", str(state))
    (state / "models" / "current").mkdir(parents=True)
    calibration = state / "calibrations" / "pump-1" / "calibration.yaml"
    calibration.parent.mkdir(parents=True)
    calibration.write_text("placeholder: the schema only checks that it exists\n")
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.engine.kind == "tensorrt"
    assert config.engine.cache_dir == state / "engines"
    assert config.machines[0].calibration == calibration
