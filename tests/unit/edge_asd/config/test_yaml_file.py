"""The config file as text: what is not UTF-8 YAML is refused at its file, line and column
(1-based) with what to do; a UTF-8 byte-order mark is accepted.

Through load_config, the daemon's reader; the recipe, calibration.yaml and model.yaml
share the reader (edge_asd.config.yaml_file) and have one test each beside their own.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from edge_asd.config import load_config, resolve_password
from edge_asd.errors import ConfigError
from tests.unit.edge_asd.config.test_load import BASE

SAVE_AS_UTF8 = "save the file as UTF-8 (in most editors: Save as, Encoding: UTF-8)"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "cal.yaml").write_text("placeholder\n")
    return tmp_path / "config.yaml"


def refusal(config: Path, data: bytes) -> str:
    config.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_a_utf8_byte_order_mark_is_accepted(config: Path):
    config.write_bytes(codecs.BOM_UTF8 + BASE.encode())
    assert load_config(config).device_id == "dev-1"


def test_a_latin1_byte_in_a_crlf_file_names_the_line_and_column_an_editor_shows(config: Path):
    text = BASE.replace("machines:\n", "machines:\n  # Kühlpumpe 3, Halle Nord\n")
    message = refusal(config, text.replace("\n", "\r\n").encode("cp1252"))
    assert message == (
        f"{config}:10:6: cannot read the config: byte 0xfc is not UTF-8 (line 10: "
        f'"  # K\\xfchlpumpe 3, Halle Nord"); it looks like Windows-1252 or Latin-1, '
        f"where 0xfc is 'ü': {SAVE_AS_UTF8}"
    )


def test_a_byte_that_no_8_bit_encoding_explains_is_still_placed(config: Path):
    message = refusal(config, BASE.encode().replace(b"dev-1", b"dev-\x81"))
    assert message == (
        f'{config}:1:16: cannot read the config: byte 0x81 is not UTF-8 (line 1: "device_id: '
        f'dev-\\x81"): {SAVE_AS_UTF8}'
    )


@pytest.mark.parametrize(
    ("encoding", "named", "how"),
    [
        ("utf-16", "UTF-16", "it starts with that byte-order mark"),
        ("utf-32", "UTF-32", "it starts with that byte-order mark"),
        ("utf-16-le", "UTF-16", "no byte-order mark, but every other byte is 0"),
        ("utf-16-be", "UTF-16", "no byte-order mark, but every other byte is 0"),
    ],
)
def test_a_utf16_or_utf32_config_is_named_with_its_encoding(config, encoding, named, how):
    message = refusal(config, BASE.encode(encoding))
    assert message == f"{config}:1:1: cannot read the config: it is saved as {named} ({how}); " + (
        SAVE_AS_UTF8
    )


def test_a_nul_byte_names_its_line_and_column_and_says_binary_or_truncated(config: Path):
    # What a power cut can leave: the file's length written, its last block never was.
    cut = BASE.index("outbox:") + len("outbox:\n  pa")
    message = refusal(config, BASE.encode()[:cut] + b"\0" * 512)
    assert message == (
        f"{config}:17:5: cannot read the config: a NUL byte (0x00): the file looks binary "
        f"or truncated, not text; check that it is the right file"
    )


def test_a_control_character_names_its_line_and_column(config: Path):
    message = refusal(config, BASE.replace("dev-1", "dev\x1b-1").encode())
    assert message == (
        f"{config}:1:15: cannot read the config: control character U+001B (line 1: "
        f'"device_id: dev\\x1b-1"); YAML text holds no control characters: delete it'
    )


def test_a_tab_indent_names_its_line_and_column_and_says_yaml_indents_with_spaces(config):
    message = refusal(config, BASE.replace("  host: localhost", "\thost: localhost").encode())
    assert message == (
        f"{config}:15:1: not valid YAML: a tab character: YAML indents with spaces, never "
        f"tabs; replace the tab with spaces"
    )


def test_a_syntax_error_names_line_column_and_where_the_broken_construct_began(config):
    message = refusal(config, BASE.replace("  host: localhost", "  host: [localhost").encode())
    assert message == (
        f"{config}:16:7: not valid YAML: expected ',' or ']', but got ':' "
        f"(while parsing a flow sequence at line 15, column 9)"
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# device_id: dev-1\n"])
def test_an_empty_config_is_refused_as_empty(config: Path, text: str):
    assert refusal(config, text.encode()) == (
        f"{config}:1:1: the config is empty (nothing but blank lines or comments): expected "
        f"a mapping of settings (device_id: ..., model: ...); start from an example in configs/"
    )


def test_a_config_that_is_a_directory_says_so(config: Path):
    config.mkdir()
    with pytest.raises(ConfigError, match=r"config.yaml: cannot read the config: it is a direc"):
        load_config(config)


def test_a_password_file_not_in_utf8_is_refused_without_quoting_it(config: Path):
    secret = config.parent / "pw"
    secret.write_bytes("Kühlwasser-geheim\n".encode("cp1252"))
    auth = "  username: u\n  password_file: pw\n"
    config.write_text(BASE.replace("  host: localhost\n", "  host: localhost\n" + auth))
    with pytest.raises(ConfigError) as caught:
        resolve_password(load_config(config).mqtt)
    message = str(caught.value)
    assert message.startswith(f"mqtt.password_file: {secret}:1:2: cannot read the password:")
    assert "save the file as UTF-8" in message
    assert "hlwasser" not in message and "'ü'" not in message and "\\xfc" not in message


def test_a_password_file_saved_with_a_byte_order_mark_gives_the_password_alone(config: Path):
    (config.parent / "pw").write_bytes(codecs.BOM_UTF8 + b"geheim\n")
    auth = "  username: u\n  password_file: pw\n"
    config.write_text(BASE.replace("  host: localhost\n", "  host: localhost\n" + auth))
    assert resolve_password(load_config(config).mqtt) == "geheim"
