"""Loading the daemon config: strict validation, and messages that name line, key and value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from edge_asd.config import load_config, resolve_password
from edge_asd.config.yaml_lines import parse_yaml
from edge_asd.errors import ConfigError

REPO = Path(__file__).resolve().parents[4]

BASE = """\
device_id: dev-1
model: model
audio:
  sources:
    - kind: synthetic
      name: synth
      channels: 2
      realtime: false
machines:
  - name: pump-1
    source: synth
    channel: 0
    calibration: cal.yaml
mqtt:
  host: localhost
outbox:
  path: outbox.sqlite
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "cal.yaml").write_text("placeholder\n")
    return tmp_path


def load(folder: Path, text: str):
    path = folder / "config.yaml"
    path.write_text(text)
    return load_config(path)


def error(folder: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(folder, text)
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_defaults_fill_what_the_file_leaves_out_and_paths_are_relative_to_it(folder: Path):
    config = load(folder, BASE)
    assert config.model == folder / "model"
    assert config.machines[0].calibration == folder / "cal.yaml"
    assert config.outbox.path == folder / "outbox.sqlite"
    assert (config.audio.hop_seconds, config.mqtt.port, config.engine.kind) == (
        1.0,
        1883,
        "onnxruntime",
    )


def test_every_field_is_described():
    from pydantic import BaseModel

    from edge_asd.config import schema

    models = [v for v in vars(schema).values() if isinstance(v, type) and issubclass(v, BaseModel)]
    undescribed = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undescribed == []


def test_lines_are_tracked_through_lists_and_nested_mappings():
    document = parse_yaml(BASE)
    assert document.lines[("audio", "sources", 0, "channels")] == 7
    assert document.lines[("machines", 0, "calibration")] == 13
    assert document.line_of(("machines", 0, "decision", "k")) == 10  # the machine's line


def test_a_key_written_twice_is_an_error_at_its_second_line(folder: Path):
    message = error(folder, BASE.replace("  host: localhost", "  host: localhost\n  host: x"))
    assert re.search(r"config.yaml:16: mqtt.host: key 'mqtt.host' is written twice", message)


def test_yaml_syntax_errors_give_the_line(folder: Path):
    message = error(folder, BASE.replace("  host: localhost", "  host: [localhost"))
    assert "config.yaml:" in message and "not valid YAML" in message


def test_a_device_given_as_a_list_says_both_accepted_types(folder: Path):
    text = BASE.replace("kind: synthetic", "kind: device\n      device: [1]").replace(
        "      realtime: false\n", ""
    )
    message = error(folder, text)
    assert "audio.sources[0].device: [1]: expected a valid integer, or expected a valid string" in (
        message
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("source: synth", "source: mic"),
            "machines[0].source: 'mic': expected the name of a source",
        ),
        (("channel: 0", "channel: 2"), "machines[0].channel: 2: expected a channel below 2"),
        (
            (
                "  - name: pump-1\n",
                "  - name: pump-1\n    source: synth\n    calibration: cal.yaml\n"
                "  - name: pump-1\n",
            ),
            "machines[1].name: 'pump-1': expected a unique name",
        ),
        (
            (
                "  host: localhost",
                "  host: localhost\n  password_env: A\n  password_file: cal.yaml\n  username: u",
            ),
            "mqtt.password_file: expected one password source",
        ),
        (
            ("  host: localhost", "  host: localhost\n  password_env: MQTT_PW"),
            "a password needs mqtt.username",
        ),
        (
            ("  host: localhost", "  host: localhost\n  tls:\n    cert_file: cal.yaml"),
            "mqtt.tls.key_file: missing: a client certificate needs both",
        ),
        (
            (
                "  host: localhost",
                "  host: localhost\n  reconnect_min_seconds: 30\n  reconnect_max_seconds: 5",
            ),
            "mqtt.reconnect_max_seconds: 5.0: expected at least reconnect_min_seconds (30.0)",
        ),
        (
            (
                "realtime: false",
                "realtime: false\n      faults: [{kind: tone, start_s: 9, end_s: 3}]",
            ),
            "audio.sources[0].faults[0].end_s: 3.0: expected an end after the start (9.0)",
        ),
    ],
)
def test_settings_that_contradict_each_other_are_caught(folder: Path, change, expected):
    text = BASE.replace(*change)
    assert expected in error(folder, text)


def test_sources_must_share_one_pace(folder: Path):
    text = BASE.replace(
        "machines:",
        "    - kind: synthetic\n      name: live\n      realtime: true\nmachines:",
    )
    message = error(folder, text)
    assert "audio.sources[1].realtime: True: expected realtime: false" in message


def test_a_hop_that_is_not_whole_samples_is_refused(folder: Path):
    message = error(folder, BASE.replace("audio:\n", "audio:\n  hop_seconds: 0.12345\n"))
    assert "audio.hop_seconds: 0.12345: hop of 0.12345 s is not a whole number of samples" in (
        message
    )


def test_a_password_in_the_config_is_refused_without_echoing_it(folder: Path):
    message = error(
        folder, BASE.replace("  host: localhost", "  host: localhost\n  password: hunter2")
    )
    assert "mqtt.password: unknown key: a password is never written in the config" in message
    assert "hunter2" not in message


def test_topic_prefix_may_have_levels_but_no_wildcards(folder: Path):
    config = load(
        folder, BASE.replace("  host: localhost", "  host: h\n  topic_prefix: plant-3/asd")
    )
    assert config.mqtt.topic_prefix == "plant-3/asd"
    message = error(folder, BASE.replace("  host: localhost", "  host: h\n  topic_prefix: a/+/b"))
    assert "mqtt.topic_prefix: 'a/+/b': expected levels of letters" in message


def test_password_comes_from_the_environment_a_file_or_a_systemd_credential(folder: Path):
    (folder / "pw").write_text("from-file\n")
    (folder / "creds").mkdir()
    (folder / "creds" / "mqtt-password").write_text("from-credential")
    auth = "  host: h\n  username: u\n"
    by_env = load(folder, BASE.replace("  host: localhost\n", auth + "  password_env: PW\n"))
    by_file = load(folder, BASE.replace("  host: localhost\n", auth + "  password_file: pw\n"))
    by_cred = load(
        folder, BASE.replace("  host: localhost\n", auth + "  password_credential: mqtt-password\n")
    )
    assert resolve_password(by_env.mqtt, {"PW": "from-env"}) == "from-env"
    assert resolve_password(by_file.mqtt, {}) == "from-file"
    environ = {"CREDENTIALS_DIRECTORY": str(folder / "creds")}
    assert resolve_password(by_cred.mqtt, environ) == "from-credential"
    with pytest.raises(ConfigError, match="environment variable PW is not set"):
        resolve_password(by_env.mqtt, {})
    with pytest.raises(ConfigError, match=r"\$CREDENTIALS_DIRECTORY is not set"):
        resolve_password(by_cred.mqtt, {})
    assert resolve_password(load(folder, BASE).mqtt, {}) is None


def test_the_config_object_never_shows_the_password(folder: Path):
    (folder / "pw").write_text("hunter2\n")
    config = load(
        folder,
        BASE.replace("  host: localhost\n", "  host: h\n  username: u\n  password_file: pw\n"),
    )
    assert "hunter2" not in repr(config)


def relocated_example(name: str, root: Path) -> Path:
    """An example config with its absolute paths moved under `root`, the files created."""
    text = (REPO / "configs" / name).read_text()
    text = text.replace("/var/lib/edge-asd/", f"{root}/var/").replace(
        "/etc/edge-asd/", f"{root}/etc/"
    )
    data = yaml.safe_load(text)
    Path(data["model"]).mkdir(parents=True)
    files = [m["calibration"] for m in data["machines"]]
    files += [v for k, v in (data["mqtt"].get("tls") or {}).items() if k.endswith("_file")]
    for file in files:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        Path(file).write_text("placeholder\n")
    Path(data["outbox"]["path"]).parent.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["jetson-usb-mic.yaml", "multichannel-interface.yaml"])
def test_the_example_configs_are_valid(name: str, tmp_path: Path):
    config = load_config(relocated_example(name, tmp_path))
    assert config.machines and config.mqtt.tls is not None


# The evidence section: on by default beside the outbox; a folder so long that events could
# not name their clips within their bound is refused.


def test_evidence_is_on_by_default_beside_the_outbox(folder: Path):
    config = load(folder, BASE)
    assert config.evidence.enabled
    assert config.evidence_path == folder / "evidence"


def test_an_evidence_path_too_long_for_an_event_is_refused_naming_the_key(folder: Path):
    with pytest.raises(ConfigError) as caught:
        load(folder, BASE + f"evidence:\n  path: /{'x' * 300}\n")
    assert "evidence.path" in str(caught.value)
    assert "expected a shorter evidence folder" in str(caught.value)


def test_a_long_outbox_folder_is_refused_when_the_evidence_goes_beside_it(folder: Path):
    deep = folder / ("d" * 250)
    deep.mkdir()
    text = BASE.replace("path: outbox.sqlite", f"path: {deep}/outbox.sqlite")
    with pytest.raises(ConfigError) as caught:
        load(folder, text)
    assert "outbox.path" in str(caught.value)
    load(folder, text + "evidence:\n  enabled: false\n")  # no clips, no bound
    load(folder, text + "evidence:\n  path: /var/lib/edge-asd/evidence\n")
