"""Errors a user can cause, each with the exit code the command line returns for it."""

from __future__ import annotations

EXIT_USAGE = 2  # bad command line or config
EXIT_INPUT = 3  # an input file (audio, model, calibration) cannot be used
EXIT_RUNTIME = 4  # a device or service failed in a way the user must fix


class UserError(Exception):
    """A problem the user can fix; the CLI prints the message alone and exits `exit_code`."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(UserError):
    """A config file that cannot be used: the message names the file, line and key."""

    exit_code = EXIT_USAGE


class AudioFileError(UserError):
    """An audio file that cannot be read or used; the message names the file."""

    exit_code = EXIT_INPUT


class ModelFileError(UserError):
    """A model or calibration file that is missing, corrupt or does not match."""

    exit_code = EXIT_INPUT
