"""Model labels: `<machine_type>/section_XX`, or `<machine_type>/section_XX/<attributes>`.

A machine in the field is bound to one label or to a prefix covering several (all
attribute labels of one section, say); `matching_indices` resolves that binding.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge_asd.errors import UserError


def make_label(machine_type: str, section: str, attributes: str = "") -> str:
    """The label of a (machine type, two-digit section[, attributes])."""
    label = f"{machine_type}/section_{section}"
    return f"{label}/{attributes}" if attributes else label


def matching_indices(labels: Sequence[str], binding: str) -> list[int]:
    """Indices of labels equal to `binding` or under it as a prefix (`binding/...`).

    Raises UserError listing a few known labels when none match.
    """
    prefix = binding.rstrip("/")
    found = [
        i for i, label in enumerate(labels) if label == prefix or label.startswith(prefix + "/")
    ]
    if not found:
        shown = ", ".join(list(labels)[:6]) + (", ..." if len(labels) > 6 else "")
        raise UserError(f"label {binding!r} matches none of the model's labels ({shown})")
    return found
