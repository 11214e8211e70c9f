"""The real recordings in ../shared/data (DCASE 2022 layout); tests skip when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_root() -> Path:
    """`EDGE_ASD_DATA`, or ../shared/data beside the repository."""
    return Path(os.environ.get("EDGE_ASD_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real recordings, or a skip saying where they were looked for."""
    root = shared_data_root()
    if not (root / "README.md").is_file():
        pytest.skip(f"real recordings not found at {root} (set EDGE_ASD_DATA or add ../shared)")
    return root
