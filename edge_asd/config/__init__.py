"""The daemon's config: one strictly validated YAML file (see configs/ for examples)."""

from edge_asd.config.load import load_config
from edge_asd.config.outputs import MqttConfig
from edge_asd.config.schema import (
    Config,
    DeviceSource,
    FileSource,
    MachineConfig,
    SyntheticSource,
)
from edge_asd.config.secrets import resolve_password

__all__ = [
    "Config",
    "DeviceSource",
    "FileSource",
    "MachineConfig",
    "MqttConfig",
    "SyntheticSource",
    "load_config",
    "resolve_password",
]
