"""Config errors through the real command line: one test per class of mistake.

Each shows the message a user sees (file, line, key path, bad value, what is expected)
and the exit code (2), for `edge-asd validate-config` and for `edge-asd run`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

VALID = """\
device_id: jetson-01
model: model
audio:
  hop_seconds: 1.0
  sources:
    - kind: file
      name: rec
      path: rec.wav
machines:
  - name: pump-1
    source: rec
    channel: 0
    calibration: calibration.yaml
mqtt:
  host: 127.0.0.1
  port: 1883
outbox:
  path: outbox.sqlite
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with the files VALID names (placeholders: these tests stop at the config)."""
    from edge_asd.synth import write_wav

    (tmp_path / "model").mkdir()
    (tmp_path / "calibration.yaml").write_text("placeholder\n")
    write_wav(tmp_path / "rec.wav", [0.0] * 1600)
    return tmp_path


def edge_asd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", *args], capture_output=True, text=True, timeout=60
    )


def validate(folder: Path, text: str) -> subprocess.CompletedProcess:
    path = folder / "config.yaml"
    path.write_text(text)
    return edge_asd("validate-config", "--no-files", str(path))


def test_a_valid_config_passes_and_says_what_it_sets_up(folder: Path):
    result = validate(folder, VALID)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert "machine pump-1: rec channel 0" in result.stdout


def test_unknown_key_names_its_line_and_suggests_the_right_one(folder: Path):
    result = validate(folder, VALID.replace("  port: 1883", "  port: 1883\n  keepalive: 30"))
    assert result.returncode == 2
    assert f"{folder / 'config.yaml'}:17: mqtt.keepalive: unknown key" in result.stderr
    assert "did you mean 'keepalive_seconds'?" in result.stderr


def test_wrong_type_shows_the_value_and_the_expected_type(folder: Path):
    result = validate(folder, VALID.replace("port: 1883", "port: mqtt"))
    assert result.returncode == 2
    assert "config.yaml:16: mqtt.port: 'mqtt': expected a valid integer" in result.stderr


def test_out_of_range_value_shows_the_bound(folder: Path):
    result = validate(folder, VALID.replace("hop_seconds: 1.0", "hop_seconds: 0.01"))
    assert result.returncode == 2
    assert (
        "config.yaml:4: audio.hop_seconds: 0.01: expected greater than or equal to 0.1"
        in result.stderr
    )


def test_a_name_that_could_inject_a_topic_is_refused(folder: Path):
    result = validate(folder, VALID.replace("name: pump-1", "name: pump/#"))
    assert result.returncode == 2
    assert "config.yaml:10: machines[0].name: 'pump/#': expected 1 to 64 letters" in result.stderr


def test_a_missing_file_is_named_with_its_resolved_path(folder: Path):
    (folder / "calibration.yaml").unlink()
    result = validate(folder, VALID)
    assert result.returncode == 2
    assert (
        f"config.yaml:13: machines[0].calibration: 'calibration.yaml': expected an existing "
        f"file, but {folder / 'calibration.yaml'} does not exist" in result.stderr
    )


def test_a_missing_config_file_exits_2(tmp_path: Path):
    result = edge_asd("validate-config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml: no such config file" in result.stderr


def test_every_problem_is_listed_at_once(folder: Path):
    text = VALID.replace("port: 1883", "port: 70000").replace("device_id: jetson-01", "")
    result = validate(folder, text)
    assert result.returncode == 2
    assert "2 problems in the config" in result.stderr
    assert "config.yaml:2: device_id: missing: required (this device's id" in result.stderr
    assert "mqtt.port: 70000: expected less than or equal to 65535" in result.stderr


def test_run_refuses_a_bad_config_with_the_same_message_and_code(folder: Path):
    path = folder / "config.yaml"
    path.write_text(VALID.replace("kind: file", "kind: microphone"))
    result = edge_asd("run", "--config", str(path))
    assert result.returncode == 2
    assert "config.yaml:6: audio.sources[0].kind: 'microphone': expected one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_latin1_comment_is_refused_at_its_line_and_column_asking_for_utf8(folder: Path):
    # Issue 16, item 5: this was "can't decode byte 0xfc in position 37", not its line.
    path = folder / "config.yaml"
    text = VALID.replace("audio:\n", "# Kühlpumpe 3, Halle Nord\naudio:\n", 1)
    path.write_bytes(text.encode("latin-1"))
    assert path.read_bytes().index(b"\xfc") == 37  # the byte of the report
    expected = (
        f"{path}:3:4: cannot read the config: byte 0xfc is not UTF-8 (line 3: "
        f'"# K\\xfchlpumpe 3, Halle Nord"); it looks like Windows-1252 or Latin-1, where 0xfc '
        f"is 'ü': save the file as UTF-8 (in most editors: Save as, Encoding: UTF-8)\n"
    )
    for command in (("validate-config", str(path)), ("run", "--config", str(path))):
        result = edge_asd(*command)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"edge-asd {command[0]}: error: {expected}"
