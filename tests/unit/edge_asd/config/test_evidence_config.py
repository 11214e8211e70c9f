"""The evidence section: an evidence folder too long for events to name their clips is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_asd.config import load_config
from edge_asd.errors import ConfigError

BASE = """\
device_id: dev-1
model: model
audio:
  sources:
    - {kind: synthetic, name: synth, realtime: false}
machines:
  - {name: pump-1, source: synth, calibration: cal.yaml}
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
