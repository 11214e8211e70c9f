"""The page's config rules through `edge-asd validate-config`: no page reachable from
another host without a password, one password source, never a default password."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.test_daemon_config import VALID, validate


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The files VALID names, as placeholders (these tests stop at the config)."""
    from edge_asd.synth import write_wav

    (tmp_path / "model").mkdir()
    (tmp_path / "calibration.yaml").write_text("placeholder\n")
    write_wav(tmp_path / "rec.wav", [0.0] * 1600)
    return tmp_path


pytestmark = pytest.mark.system


def test_a_page_off_loopback_without_a_password_is_refused_naming_web_address(files: Path):
    result = validate(files, VALID + "web:\n  enabled: true\n  address: 0.0.0.0\n")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "config.yaml:21: web.address: '0.0.0.0': expected a loopback address" in lines[0]
    assert "web.password_env" in lines[0]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_a_page_on_loopback_needs_no_password(files: Path, address: str):
    result = validate(files, VALID + f"web:\n  enabled: true\n  address: '{address}'\n")
    assert result.returncode == 0, result.stderr


def test_a_page_off_loopback_with_a_password_is_valid(files: Path):
    text = VALID + "web:\n  enabled: true\n  address: 0.0.0.0\n  password_env: PAGE_PW\n"
    assert validate(files, text).returncode == 0


def test_two_password_sources_for_the_page_are_refused(files: Path):
    (files / "pw").write_text("secret\n")
    text = VALID + "web:\n  enabled: true\n  password_env: PAGE_PW\n  password_file: pw\n"
    result = validate(files, text)
    assert result.returncode == 2
    assert "web.password_file" in result.stderr and "one password source" in result.stderr
    assert "secret" not in result.stderr


def test_a_password_in_the_config_itself_is_refused(files: Path):
    result = validate(files, VALID + "web:\n  enabled: true\n  password: hunter2\n")
    assert result.returncode == 2
    assert "web.password: unknown key: a password is never written in the config" in (result.stderr)


def test_validate_config_warns_of_an_unset_page_password_variable(files: Path):
    text = VALID + "web:\n  enabled: true\n  password_env: EDGE_ASD_TEST_UNSET_PAGE_PW\n"
    result = validate(files, text)
    assert result.returncode == 0, result.stderr  # the service's environment may provide it
    assert "web.password_env: the environment variable EDGE_ASD_TEST_UNSET_PAGE_PW is not set" in (
        result.stderr
    )
