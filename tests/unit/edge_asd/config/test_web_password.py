"""The page's password is read the same ways as the broker's, by the same reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_asd.config.outputs import MqttConfig, WebConfig
from edge_asd.config.secrets import resolve_password
from edge_asd.errors import ConfigError


def test_the_page_password_comes_from_env_file_or_credential(tmp_path: Path):
    (tmp_path / "pw").write_text("from-file\nignored\n")
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "page").write_text("from-credential")
    by_env = WebConfig(enabled=True, password_env="PAGE_PW")
    by_file = WebConfig(enabled=True, password_file=tmp_path / "pw")
    by_credential = WebConfig(enabled=True, password_credential="page")
    assert resolve_password(by_env, {"PAGE_PW": "from-env"}, key="web") == "from-env"
    assert resolve_password(by_file, {}, key="web") == "from-file"
    creds = {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")}
    assert resolve_password(by_credential, creds, key="web") == "from-credential"
    assert resolve_password(WebConfig(), {}, key="web") is None


def test_a_missing_page_password_names_the_web_key_never_the_secret(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^web\.password_env: .*PAGE_PW is not set"):
        resolve_password(WebConfig(enabled=True, password_env="PAGE_PW"), {}, key="web")
    (tmp_path / "pw").write_text("")
    with pytest.raises(ConfigError, match=r"^web\.password_file: .* is empty"):
        resolve_password(WebConfig(password_file=tmp_path / "pw"), {}, key="web")


@pytest.mark.parametrize("key", ["mqtt", "web"])
def test_an_empty_password_is_refused_naming_its_key(tmp_path: Path, key: str):
    """An empty password would let anyone with the user name in ('edge-asd:')."""
    section = MqttConfig(host="localhost", password_env="PW") if key == "mqtt" else (
        WebConfig(enabled=True, password_env="PW"))  # fmt: skip
    with pytest.raises(ConfigError, match=rf"^{key}\.password_env: .*PW is empty"):
        resolve_password(section, {"PW": ""}, key=key)
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "pw").write_text("\n")
    by_credential = section.model_copy(update={"password_env": None, "password_credential": "pw"})
    creds = {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")}
    with pytest.raises(ConfigError, match=rf"^{key}\.password_credential: .* is empty"):
        resolve_password(by_credential, creds, key=key)
