"""Passwords (the MQTT broker's, the page's): from an environment variable, a file, or a
systemd credential.

They are never in the config itself and never logged: callers get them as plain strings
only to hand to the MQTT client or to compare (hmac.compare_digest) with what a browser sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from edge_asd.config.text_file import read_text_file
from edge_asd.errors import ConfigError

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"  # set by systemd for LoadCredential=


class PasswordSource(Protocol):
    """A config section that may name a password (MqttConfig, WebConfig)."""

    password_env: str | None
    password_file: Path | None
    password_credential: str | None


def resolve_password(
    section: PasswordSource, environ: Mapping[str, str] | None = None, key: str = "mqtt"
) -> str | None:
    """The password `section` (the config's `key` section) points to, or None when it names none.

    Raises ConfigError (saying where it looked, never what it found) when the variable is
    unset or empty, or the file or credential is missing, unreadable, not UTF-8 text or
    empty: an empty password would let anyone with the user name in.
    """
    environ = os.environ if environ is None else environ
    if section.password_env is not None:
        if section.password_env not in environ:
            raise ConfigError(
                f"{key}.password_env: the environment variable {section.password_env} is not set"
            )
        if not environ[section.password_env]:
            raise ConfigError(
                f"{key}.password_env: the environment variable {section.password_env} is empty"
            )
        return environ[section.password_env]
    if section.password_file is not None:
        return _read_secret(section.password_file, f"{key}.password_file")
    if section.password_credential is not None:
        directory = environ.get(CREDENTIALS_ENV)
        if not directory:
            raise ConfigError(
                f"{key}.password_credential: ${CREDENTIALS_ENV} is not set; run under systemd "
                f"with LoadCredential={section.password_credential}:/path/to/secret"
            )
        credential = Path(directory) / section.password_credential
        return _read_secret(credential, f"{key}.password_credential")
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
