"""`-v` is taken before or after the command, as users type it (a fresh user's trial:
`edge-asd calibrate -v ...` was refused as an unrecognised argument)."""

from __future__ import annotations

import pytest

from edge_asd.cli import build_parser


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["-v", "validate-config", "c.yaml"], True),
        (["validate-config", "-v", "c.yaml"], True),
        (["validate-config", "c.yaml", "--verbose"], True),
        (["validate-config", "c.yaml"], False),
    ],
)
def test_verbose_is_taken_before_or_after_the_command(argv, verbose):
    assert build_parser().parse_args(argv).verbose is verbose


def test_edge_asd_train_takes_verbose_after_its_command_too():
    pytest.importorskip("torch", reason="edge-asd-train needs the train extra (torch)")
    from train.cli import build_parser as train_parser

    assert train_parser().parse_args(["export", "--run", "run", "-v"]).verbose is True
