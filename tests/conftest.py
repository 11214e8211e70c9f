"""Shared fixtures: see tests/harness/ for the real parts they start."""

pytest_plugins = [
    "tests.harness.model",
    "tests.harness.model_attributes",
    "tests.harness.broker",
    "tests.harness.alsa",
    "tests.harness.data",
]
