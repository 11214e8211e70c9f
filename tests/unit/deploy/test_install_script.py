"""deploy/jetson/install.sh: lint-clean, a dry run that changes nothing, idempotent installs.

Runs against a temporary `--root`, where the steps that act on the running system (the
service user, ownership, systemctl) are skipped; `--no-venv` keeps pip (network, minutes)
out of the real runs.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "deploy" / "jetson" / "install.sh"
UNIT = REPO / "deploy" / "jetson" / "edge-asd.service"
CONFIG = REPO / "deploy" / "jetson" / "config.example.yaml"


def install(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under root: mode, mtime and (for files) content."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else b""
        state[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns, content)
    return state


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_install_script_passes_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", "--severity=style", str(SCRIPT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_lists_every_step_and_changes_nothing(tmp_path: Path) -> None:
    result = install("--dry-run", "--root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == [], "a dry run writes nothing"
    out = result.stdout
    assert "(dry run)" in out
    assert "skipped under --root: service user edge-asd" in out
    venv = tmp_path / "opt/edge-asd/venv"
    assert f"would run: python3 -m venv --system-site-packages {venv}" in out
    pip_line = next(
        line for line in out.splitlines() if "pip install --quiet" in line and "onnx" in line
    )
    assert str(REPO) in pip_line, "edge-asd is installed from this source tree"
    assert "torch" not in pip_line and "[train]" not in pip_line
    for path in (
        "etc/edge-asd",
        "var/lib/edge-asd/engines",
        "etc/edge-asd/config.yaml",
        "etc/edge-asd/mqtt-password",
        "etc/systemd/system/edge-asd.service",
    ):
        assert f"{tmp_path}/{path}" in out, path
    assert "systemctl daemon-reload" in out


def test_install_into_a_root_puts_files_in_place(tmp_path: Path) -> None:
    result = install("--root", str(tmp_path), "--no-venv")
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "etc/systemd/system/edge-asd.service"
    assert unit.read_bytes() == UNIT.read_bytes()
    config = tmp_path / "etc/edge-asd/config.yaml"
    assert config.read_bytes() == CONFIG.read_bytes()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    password = tmp_path / "etc/edge-asd/mqtt-password"
    assert password.read_bytes() == b"", "an empty credential, so LoadCredential= finds it"
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    for sub in ("models", "calibrations", "engines"):
        assert stat.S_IMODE((tmp_path / "var/lib/edge-asd" / sub).stat().st_mode) == 0o750
    assert (tmp_path / "opt/edge-asd/README.md").is_file()
    assert not (tmp_path / "opt/edge-asd/venv").exists()


def test_second_install_changes_nothing(tmp_path: Path) -> None:
    assert install("--root", str(tmp_path), "--no-venv").returncode == 0
    before = snapshot(tmp_path)
    again = install("--root", str(tmp_path), "--no-venv")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert snapshot(tmp_path) == before


def test_reinstall_keeps_the_admins_config_and_password_but_restores_the_unit(
    tmp_path: Path,
) -> None:
    assert install("--root", str(tmp_path), "--no-venv").returncode == 0
    config = tmp_path / "etc/edge-asd/config.yaml"
    config.write_text("device_id: line-4-press\n")
    password = tmp_path / "etc/edge-asd/mqtt-password"
    password.write_text("s3cret\n")
    unit = tmp_path / "etc/systemd/system/edge-asd.service"
    unit.write_text("[Service]\nExecStart=/bin/false\n")
    result = install("--root", str(tmp_path), "--no-venv")
    assert result.returncode == 0, result.stderr
    assert config.read_text() == "device_id: line-4-press\n"
    assert password.read_text() == "s3cret\n"
    assert unit.read_bytes() == UNIT.read_bytes()
    assert "daemon-reload" in result.stdout


def test_dry_run_over_an_install_reports_without_repairing(tmp_path: Path) -> None:
    assert install("--root", str(tmp_path), "--no-venv").returncode == 0
    unit = tmp_path / "etc/systemd/system/edge-asd.service"
    unit.write_text("edited\n")
    result = install("--dry-run", "--root", str(tmp_path), "--no-venv")
    assert result.returncode == 0
    assert f"would run: install -m 0644 {UNIT} {unit}" in result.stdout
    assert unit.read_text() == "edited\n"


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    assert install("--frobnicate").returncode == 2
    missing = install("--root", str(tmp_path / "missing"))
    assert missing.returncode == 2 and "not a directory" in missing.stderr
    not_source = install("--dry-run", "--root", str(tmp_path), "--source", str(tmp_path))
    assert not_source.returncode == 2 and "not an edge-asd source tree" in not_source.stderr


def test_help_describes_the_options() -> None:
    result = install("--help")
    assert result.returncode == 0
    for option in ("--dry-run", "--root DIR", "--no-venv", "--enable"):
        assert option in result.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="runs as root here")
def test_a_real_install_needs_root() -> None:
    result = install()
    assert result.returncode == 1 and "run as root" in result.stderr
