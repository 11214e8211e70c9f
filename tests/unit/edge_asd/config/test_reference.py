"""The committed configuration reference is what the schema generates, key for key."""

from __future__ import annotations

from pathlib import Path

from edge_asd.config.reference import render, rows
from edge_asd.config.schema import Config

DOC = Path(__file__).resolve().parents[4] / "docs" / "configuration.md"


def test_configuration_reference_is_up_to_date():
    assert DOC.read_text() == render(), (
        "stale: run python -m edge_asd.config.reference > docs/configuration.md"
    )


def test_reference_lists_every_key_of_nested_sections_with_its_description():
    listed = {path: description for path, _, _, _, description in rows(Config)}
    assert "mqtt.tls.ca_file" in listed and "machines[].decision.k" in listed
    assert all(listed.values()), [p for p, d in listed.items() if not d]
