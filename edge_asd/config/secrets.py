"""The MQTT password: from an environment variable, a file, or a systemd credential.

It is never in the config itself and never logged: callers get it as a plain string only
to hand to the MQTT client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from edge_asd.config.schema import MqttConfig
from edge_asd.config.text_file import read_text_file
from edge_asd.errors import ConfigError

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"  # set by systemd for LoadCredential=


def resolve_password(mqtt: MqttConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The password the config points to, or None when it names none.

    Raises ConfigError (saying where it looked, never what it found) when the variable is
    unset, or the file or credential is missing, unreadable, not UTF-8 text or empty.
    """
    environ = os.environ if environ is None else environ
    if mqtt.password_env is not None:
        if mqtt.password_env not in environ:
            raise ConfigError(
                f"mqtt.password_env: the environment variable {mqtt.password_env} is not set"
            )
        return environ[mqtt.password_env]
    if mqtt.password_file is not None:
        return _read_secret(mqtt.password_file, "mqtt.password_file")
    if mqtt.password_credential is not None:
        directory = environ.get(CREDENTIALS_ENV)
        if not directory:
            raise ConfigError(
                f"mqtt.password_credential: ${CREDENTIALS_ENV} is not set; run under systemd "
                f"with LoadCredential={mqtt.password_credential}:/path/to/secret"
            )
        return _read_secret(Path(directory) / mqtt.password_credential, "mqtt.password_credential")
    return None


def _read_secret(path: Path, key: str) -> str:
    try:  # the shared reader of user files, told to quote nothing: the content is a secret
        text = read_text_file(path, "password", ConfigError, show_lines=False)
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise ConfigError(f"{key}: {path} is empty")
    return secret
