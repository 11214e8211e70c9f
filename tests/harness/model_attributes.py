"""`attribute_model`: a model trained with one label per section and attribute.

Like `trained_model` (tests/harness/model.py) but trained with `labels="section_attribute"`
(train/synthetic.py): labels `fan/section_0X/speed_100` (the source domain) and
`fan/section_0X/speed_118` (the target domain) for sections 0-2, so a machine bound to
`fan/section_00` covers two labels, as a real section with attribute classes does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ATTRIBUTE_SECTIONS = (0, 1, 2)


@pytest.fixture(scope="session")
def attribute_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model directory; its generated DCASE tree is `attribute_model.parent.parent /
    "data"`. A minute or more on two CPU cores; needs the `train` extra (torch)."""
    pytest.importorskip("torch", reason="the model fixtures need the `train` extra (torch)")
    from train.synthetic import train_on_synthetic

    work = tmp_path_factory.mktemp("attribute_model")
    result = train_on_synthetic(work, ("fan",), ATTRIBUTE_SECTIONS, labels="section_attribute")
    return result.model_dir
