"""Broken configs and broken audio through the real command line: one clear message, the
documented exit code (edge_asd/errors.py: 2 usage or config, 3 input), no partial file.

Each config of CONFIGS goes through `edge-asd validate-config` and `edge-asd run` (which
must refuse it before creating its outbox); each audio file of AUDIO through `edge-asd
score` and `edge-asd calibrate` (which must write nothing when it refuses). Which audio is
refused and which is accepted with a warning is decided in docs/reliability.md: `score`
is a diagnostic that scores whatever it can decode (a file below 16 kHz, silent or
clipped gets a warning), `calibrate` refuses what would make a wrong threshold.
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
import yaml

from edge_asd.cli import main
from edge_asd.errors import EXIT_INPUT, EXIT_USAGE
from edge_asd.synth import render_clip, write_wav
from tests.harness.daemon_process import flapping_calibration

pytestmark = [pytest.mark.system, pytest.mark.slow]

VALID = """\
device_id: jetson-01
model: {model}
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
  path: state/outbox.sqlite
"""


@dataclass(frozen=True)
class BrokenConfig:
    name: str
    make: Callable[[str], str]  # the valid text -> the broken text (or bytes: see `raw`)
    code: int
    message: str
    raw: bytes | None = None  # written as is instead of make(VALID)


def replace(old: str, new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return change


CONFIGS = [
    BrokenConfig("empty file", lambda t: "", EXIT_USAGE, ":1:1: the config is empty"),
    BrokenConfig("only a comment", lambda t: "# todo\n", EXIT_USAGE, "expected a mapping"),
    BrokenConfig("a list", lambda t: "- device_id: x\n", EXIT_USAGE, "expected a mapping"),
    BrokenConfig(
        "binary", str, EXIT_USAGE, ":1:1: cannot read the config: a NUL byte", raw=bytes(range(256))
    ),
    BrokenConfig(
        "latin-1 comment",
        str,
        EXIT_USAGE,
        ":2:4: cannot read the config: byte 0xfc is not UTF-8",
        raw=VALID.replace("model:", "# Kühlpumpe 3\nmodel:").encode("latin-1"),
    ),
    BrokenConfig(
        "utf-16",
        str,
        EXIT_USAGE,
        ":1:1: cannot read the config: it is saved as UTF-16",
        raw=VALID.encode("utf-16"),
    ),
    BrokenConfig(
        "tab indent",
        replace("  port: 1883", "\tport: 1883"),
        EXIT_USAGE,
        ":16:1: not valid YAML: a tab character: YAML indents with spaces",
    ),
    BrokenConfig("yaml syntax", replace("port: 1883", "port: [1883"), EXIT_USAGE, "not valid YAML"),
    BrokenConfig(
        "key twice",
        replace("  port: 1883", "  port: 1883\n  port: 1884"),
        EXIT_USAGE,
        ":17: mqtt.port: key 'mqtt.port' is written twice",
    ),
    BrokenConfig(
        "unknown key",
        replace("machines:", "machine:"),
        EXIT_USAGE,
        "machine: unknown key (did you mean 'machines'?)",
    ),
    BrokenConfig(
        "missing section",
        lambda t: t[: t.index("mqtt:")] + t[t.index("outbox:") :],
        EXIT_USAGE,
        "mqtt: missing: required (the MQTT broker)",
    ),
    BrokenConfig(
        "wrong type",
        replace("port: 1883", "port: mqtt"),
        EXIT_USAGE,
        ":16: mqtt.port: 'mqtt': expected a valid integer",
    ),
    BrokenConfig(
        "port out of range",
        replace("port: 1883", "port: 70000"),
        EXIT_USAGE,
        "mqtt.port: 70000: expected less than or equal to 65535",
    ),
    BrokenConfig(
        "hop of zero",
        replace("hop_seconds: 1.0", "hop_seconds: 0"),
        EXIT_USAGE,
        "audio.hop_seconds: 0: expected greater than or equal to 0.1",
    ),
    BrokenConfig(
        "hop not whole samples",
        replace("hop_seconds: 1.0", "hop_seconds: 0.10001"),
        EXIT_USAGE,
        "is not a whole number of samples",
    ),
    BrokenConfig(
        "machine name injects a topic",
        replace("name: pump-1", "name: pump-1/#"),
        EXIT_USAGE,
        "machines[0].name: 'pump-1/#': expected 1 to 64 letters, digits",
    ),
    BrokenConfig(
        "device id with a wildcard",
        replace("device_id: jetson-01", "device_id: jetson+"),
        EXIT_USAGE,
        "device_id: 'jetson+': expected 1 to 64 letters",
    ),
    BrokenConfig(
        "topic prefix with empty levels",
        replace("  host: 127.0.0.1", "  host: 127.0.0.1\n  topic_prefix: /plant//asd"),
        EXIT_USAGE,
        "mqtt.topic_prefix: '/plant//asd': expected levels of letters",
    ),
    BrokenConfig(
        "unknown source",
        replace("    source: rec", "    source: mic"),
        EXIT_USAGE,
        "machines[0].source: 'mic': expected the name of a source in audio.sources (rec)",
    ),
    BrokenConfig(
        "channel beyond the file",
        replace("channel: 0", "channel: 3"),
        EXIT_USAGE,
        "machines[0].channel: 3: expected a channel below 1",
    ),
    BrokenConfig(
        "machine twice",
        lambda t: t.replace(
            "mqtt:", "  - {name: pump-1, source: rec, calibration: calibration.yaml}\nmqtt:"
        ),
        EXIT_USAGE,
        "machines[1].name: 'pump-1': expected a unique name",
    ),
    BrokenConfig(
        "password written in it",
        replace("  port: 1883", "  port: 1883\n  username: edge\n  password: hunter2"),
        EXIT_USAGE,
        "a password is never written in the config",
    ),
    BrokenConfig(
        "password without a user",
        replace("  port: 1883", "  port: 1883\n  password_env: PW"),
        EXIT_USAGE,
        "mqtt.password_env: a password needs mqtt.username too",
    ),
    BrokenConfig(
        "client certificate without its key",
        replace("  port: 1883", "  port: 1883\n  tls:\n    cert_file: rec.wav"),
        EXIT_USAGE,
        "mqtt.tls.key_file: missing: a client certificate needs both cert_file and key_file",
    ),
    BrokenConfig(
        "reconnect bounds reversed",
        replace(
            "  port: 1883", "  port: 1883\n  reconnect_min_seconds: 30\n  reconnect_max_seconds: 5"
        ),
        EXIT_USAGE,
        "mqtt.reconnect_max_seconds: 5.0: expected at least reconnect_min_seconds",
    ),
    BrokenConfig(
        "model missing",
        lambda t: re.sub("^model: .*$", "model: nowhere", t, flags=re.M),
        EXIT_USAGE,
        "model: 'nowhere': expected a model directory (model.onnx + model.yaml) or its",
    ),
    BrokenConfig(
        "outbox folder missing",
        replace("path: state/", "path: gone/"),
        EXIT_USAGE,
        "outbox.path: 'gone/outbox.sqlite': expected a file in an existing directory",
    ),
    BrokenConfig(
        "outbox is a folder",
        replace("path: state/outbox.sqlite", "path: state"),
        EXIT_USAGE,
        "outbox.path: 'state': expected a file path, but",
    ),
    BrokenConfig(
        "unknown source kind",
        replace("kind: file", "kind: microphone"),
        EXIT_USAGE,
        "audio.sources[0].kind: 'microphone': expected one of 'device', 'file', 'synthetic'",
    ),
    BrokenConfig(
        "live and fast sources mixed",
        replace(
            "      path: rec.wav",
            "      path: rec.wav\n      realtime: false\n    - {kind: synthetic, name: gen}",
        ),
        EXIT_USAGE,
        "audio.sources[1].realtime: True: expected realtime: false like source 'rec'",
    ),
    BrokenConfig(
        "calibration of another model",
        replace("calibration: calibration.yaml", "calibration: other-model.yaml"),
        EXIT_INPUT,
        "other-model.yaml was calibrated for the model with sha256 000000000000",
    ),
    BrokenConfig(
        "calibration not yaml",
        replace("calibration: calibration.yaml", "calibration: rec.wav"),
        EXIT_INPUT,
        "rec.wav:1:8: cannot read the calibration: a NUL byte (0x00): the file looks binary",
    ),
]


@pytest.fixture(scope="module")
def config_folder(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with everything VALID names: a recording, its calibration, an outbox folder."""
    folder = tmp_path_factory.mktemp("configs")
    flapping_calibration(tiny_model, folder)
    (folder / "state").mkdir()
    other = yaml.safe_load((folder / "calibration.yaml").read_text())
    other["model_sha256"] = "0" * 64
    (folder / "other-model.yaml").write_text(yaml.safe_dump(other))
    (folder / "other-model.npz").write_bytes((folder / "calibration.npz").read_bytes())
    return folder


def one_error(stderr: str, command: str) -> str:
    """The one error message of a command: a line, or a header counting the problem lines
    that follow it (a config with two problems lists both at once)."""
    prefix = f"edge-asd {command}: error: "
    assert stderr.startswith(prefix) and stderr.count(prefix) == 1, stderr
    lines = stderr.strip().splitlines()
    listed = re.match(r".*: error: (\d+) problems in the config:$", lines[0])
    assert len(lines) == (1 + int(listed[1]) if listed else 1), stderr
    return stderr.strip()[len(prefix) :]


def test_the_valid_config_passes(config_folder: Path, tiny_model: Path, capsys):
    path = config_folder / "valid.yaml"
    path.write_text(VALID.replace("{model}", str(tiny_model)))
    assert main(["validate-config", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("case", CONFIGS, ids=[case.name for case in CONFIGS])
def test_a_broken_config_gives_one_message_and_its_exit_code(
    case: BrokenConfig, config_folder: Path, tiny_model: Path, capsys
):
    path = config_folder / f"{case.name.replace(' ', '_')}.yaml"
    if case.raw is not None:
        path.write_bytes(case.raw)
    else:
        path.write_text(case.make(VALID.replace("{model}", str(tiny_model))))
    before = sorted(p.name for p in config_folder.rglob("*"))

    assert main(["validate-config", str(path)]) == case.code
    message = one_error(capsys.readouterr().err, "validate-config")
    assert case.message in message, message
    assert main(["run", "--config", str(path)]) == case.code
    assert one_error(capsys.readouterr().err, "run") == message
    assert sorted(p.name for p in config_folder.rglob("*")) == before  # no outbox, nothing


def test_a_config_that_is_a_folder_or_missing_exits_2(config_folder: Path, capsys):
    assert main(["validate-config", str(config_folder)]) == EXIT_USAGE
    assert "cannot read the config" in one_error(capsys.readouterr().err, "validate-config")
    assert main(["validate-config", str(config_folder / "nope.yaml")]) == EXIT_USAGE
    assert "nope.yaml: no such config file" in capsys.readouterr().err


# --- audio ----------------------------------------------------------------------------

ERROR, WARNING, ACCEPTED = "error", "warning", "accepted"


@dataclass(frozen=True)
class BrokenAudio:
    name: str
    write: Callable[[Path], Path]
    score: tuple[str, str]  # (ERROR | WARNING | ACCEPTED, what the message says)
    calibrate: tuple[str, str]


def machine_sound(seconds: float, seed: int = 5) -> np.ndarray:
    return render_clip("fan", 0, "source", seconds, seed=seed)


def wav(name: str, samples, rate: int = 16000, subtype: str = "PCM_16"):
    def write(folder: Path) -> Path:
        path = folder / name
        soundfile.write(path, samples() if callable(samples) else samples, rate, subtype=subtype)
        return path

    return write


def raw(name: str, data: Callable[[], bytes]):
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data())
        return path

    return write


def with_nan_and_inf() -> np.ndarray:
    samples = machine_sound(12.0).astype(np.float32)
    samples[1000], samples[2000] = np.nan, np.inf
    return samples


def stereo_48k() -> np.ndarray:
    mono = soxr.resample(machine_sound(12.0), 16000, 48000)
    return np.stack([mono, 0.5 * mono], axis=1)


def folder_without_audio(folder: Path) -> Path:
    path = folder / "no_audio"
    path.mkdir(exist_ok=True)
    (path / "notes.txt").write_text("the recordings are on the other laptop\n")
    return path


def truncated(size: int) -> Callable[[], bytes]:
    """The first `size` bytes of a 12 s WAV file (a copy cut short)."""

    def data() -> bytes:
        buffer = io.BytesIO()
        soundfile.write(buffer, machine_sound(12.0), 16000, format="WAV", subtype="PCM_16")
        return buffer.getvalue()[:size]

    return data


UNREADABLE = "cannot read audio"
AUDIO = [
    BrokenAudio("empty", raw("empty.wav", bytes), (ERROR, UNREADABLE), (ERROR, UNREADABLE)),
    BrokenAudio(
        "truncated header",
        raw("header.wav", truncated(30)),
        (ERROR, "No 'data' chunk marker"),
        (ERROR, "No 'data' chunk marker"),
    ),
    BrokenAudio(
        "random bytes",
        raw("random.wav", lambda: np.random.default_rng(0).bytes(50_000)),
        (ERROR, "Format not recognised"),
        (ERROR, "Format not recognised"),
    ),
    BrokenAudio(
        "text named .wav",
        raw("notes.wav", lambda: b"not audio\n" * 100),
        (ERROR, UNREADABLE),
        (ERROR, UNREADABLE),
    ),
    BrokenAudio(
        "8 kHz",
        wav("8k.wav", lambda: machine_sound(12.0)[::2], rate=8000),
        (WARNING, "recorded at 8000 Hz, below the model's 16000 Hz"),
        (ERROR, "recorded at 8000 Hz, below the model's 16000 Hz"),
    ),
    BrokenAudio(
        "48 kHz stereo",
        wav("stereo48k.wav", stereo_48k, rate=48000),
        (ACCEPTED, ""),
        (ACCEPTED, ""),
    ),
    BrokenAudio(
        "float with NaN and Inf",
        wav("nan.wav", with_nan_and_inf, subtype="FLOAT"),
        (ERROR, "holds NaN or infinite samples"),
        (ERROR, "holds NaN or infinite samples"),
    ),
    BrokenAudio(
        "all zeros",
        wav("zeros.wav", lambda: np.zeros(12 * 16000)),
        (WARNING, "silent"),
        (ERROR, "silent (RMS below -80 dBFS throughout)"),
    ),
    BrokenAudio(
        "clipped",
        wav("clipped.wav", lambda: np.clip(40 * machine_sound(12.0), -1, 1)),
        (WARNING, "clipped"),
        (ERROR, "clipped"),
    ),
    BrokenAudio(
        "shorter than a window",
        wav("short.wav", lambda: machine_sound(3.0)),
        (ERROR, "3.0 s is too short (a window is 10 s; at least 5 s can be tiled to one)"),
        (ERROR, "3.0 s is too short (a window is 10 s; at least 5 s can be tiled to one)"),
    ),
    BrokenAudio(
        "over half a window",
        wav("seven.wav", lambda: machine_sound(7.0)),
        (WARNING, "7.0 s is shorter than a 10 s window; tiled (repeated) to one window"),
        (ACCEPTED, ""),
    ),
    BrokenAudio(
        "truncated data",
        raw("cut.wav", truncated(20_000)),
        (ERROR, "is too short"),
        (ERROR, "is too short"),
    ),
    BrokenAudio(
        "folder without audio",
        folder_without_audio,
        (ERROR, "folder holds no .wav or .flac file (1 not audio (notes.txt))"),
        (ERROR, "folder holds no .wav or .flac"),
    ),
    BrokenAudio(
        "missing",
        lambda folder: folder / "missing.wav",
        (ERROR, "no such file"),
        (ERROR, "no such file"),
    ),
]


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audio")
    write_wav(folder / "normal.wav", machine_sound(12.0, seed=9))
    return folder


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("case", AUDIO, ids=[case.name for case in AUDIO])
def test_broken_audio_through_score(
    case: BrokenAudio, audio_folder: Path, tiny_model: Path, capsys, caplog
):
    path = case.write(audio_folder)
    before = sorted(audio_folder.rglob("*"))
    code = main(["score", "--model", str(tiny_model), "--label", "fan/section_00",
                 "--json", str(path)])  # fmt: skip
    out, err = capsys.readouterr()
    outcome, message = case.score
    if outcome == ERROR:
        assert code == EXIT_INPUT
        line = one_error(err, "score")
        assert line.startswith(f"{path}: ") and message in line, line
        assert out == ""
    else:
        assert code == 0, err
        assert out.count("\n") == 1 and f'"file": "{path}"' in out
        warnings = [w for w in warnings_of(caplog) if str(path) in w]
        assert len(warnings) == (1 if outcome == WARNING else 0), warnings
        assert all(message in w for w in warnings)
    assert sorted(audio_folder.rglob("*")) == before  # score writes nothing


@pytest.mark.parametrize("case", AUDIO, ids=[case.name for case in AUDIO])
def test_broken_audio_through_calibrate(
    case: BrokenAudio, audio_folder: Path, tiny_model: Path, tmp_path: Path, capsys, caplog
):
    path = case.write(audio_folder)
    out = tmp_path / "out" / "calibration.yaml"
    out.parent.mkdir()
    more = tmp_path / "more.wav"  # calibration needs 5 windows or more with the good files
    write_wav(more, machine_sound(14.0, seed=10))
    code = main(["calibrate", "--model", str(tiny_model), "--machine", "pump-1",
                 "--quantile", "0.9", "--probes", "8", "--threads", "1", "--out", str(out),
                 "--input", str(audio_folder / "normal.wav"), str(more), str(path)])  # fmt: skip
    err = capsys.readouterr().err
    outcome, message = case.calibrate
    written = sorted(p.name for p in out.parent.iterdir())
    if outcome == ERROR:
        assert code == EXIT_INPUT
        error = err[err.index("edge-asd calibrate: error: ") :]
        assert re.search(
            r"^\s+" + re.escape(str(path)) + r": .*" + re.escape(message), error, re.M
        ), error
        assert "normal.wav" not in error and "more.wav" not in error  # only the broken file
        assert "Traceback" not in err
        assert written == []  # nothing, not even a temporary file
    else:
        assert code == 0, err
        assert written == ["calibration.npz", "calibration.png", "calibration.yaml"]


def test_the_installed_score_command_names_every_broken_file_and_exits_3(
    audio_folder: Path, tiny_model: Path
):
    broken = [case.write(audio_folder) for case in AUDIO if case.score[0] == ERROR]
    result = subprocess.run(
        [sys.executable, "-m", "edge_asd.cli", "score", "--model", str(tiny_model),
         "--label", "fan/section_00", str(audio_folder / "normal.wav"), *map(str, broken)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == EXIT_INPUT
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    # paths that are not there, or folders without audio, are named first (while walking)
    named = sorted(line.split(": error: ")[1].split(": ")[0] for line in errors)
    assert named == sorted(map(str, broken))
    assert result.stdout.startswith(f"{audio_folder / 'normal.wav'}: 3 windows")
    assert "Traceback" not in result.stderr
