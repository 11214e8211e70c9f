"""Training recipes are strict: a wrong one is one ConfigError naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_asd.errors import ConfigError
from train.config import TrainConfig, load_config
from train.model import ModelConfig
from train.table1 import RECIPE_DIR


def refusal(tmp_path: Path, text: str) -> str:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(recipe)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        ("labels: section\nepochs: 2.5\n", "recipe.yaml:2: epochs: 2.5:", "whole number"),
        ("labels: 'foo'\n", "recipe.yaml:1: labels: 'foo':", "'section', 'type_section' or"),
        ("epochs: 3\nbatch_size: '8'\n", "recipe.yaml:2: batch_size: '8':", "whole number"),
        ("epochs: 3\nlearning_rat: 0.1\n", "recipe.yaml:2: learning_rat:", "'learning_rate'"),
        (
            "epochs: 3\nmodel:\n  backbone: mobilefacenet\n  arcface_margn: 0.7\n",
            "recipe.yaml:4: model.arcface_margn:",
            "did you mean 'arcface_margin'",
        ),
        ("model:\n  backbone: resnet\n", "recipe.yaml:2: model.backbone: 'resnet':", "mobilenetv2"),
        ("learning_rate: 1e-4\n", "recipe.yaml:1: learning_rate: '1e-4':", "write 1.0e-4"),
        ("pseudo_labels: maybe\n", "recipe.yaml:1: pseudo_labels: 'maybe':", "'auto', 'on'"),
        ("reference:\n  fan: [1, 2]\n", "recipe.yaml:2: reference.fan: [1, 2]:", "3 items"),
    ],
)
def test_a_wrong_recipe_names_the_file_the_line_and_the_key(tmp_path, text, where, expected):
    message = refusal(tmp_path, text)
    assert where in message
    assert expected in message
    assert "\n" not in message  # one problem, one line


def test_every_problem_of_a_recipe_is_listed_at_once(tmp_path):
    message = refusal(tmp_path, "epochs: 2.5\nbatch_size: 0\nwhat: 1\n")
    assert message.startswith("3 problems in the recipe:")
    assert [line.split(": ")[1] for line in message.splitlines()[1:]] == [
        "epochs",
        "batch_size",
        "what",
    ]


def test_settings_that_contradict_each_other_name_their_key(tmp_path):
    message = refusal(tmp_path, "epochs: 3\nshort_clips: join\nselect: validation_loss\n")
    assert "recipe.yaml:2: short_clips: 'join': join needs join_key" in message
    assert "recipe.yaml:3: select: 'validation_loss': needs validation_fraction > 0" in message


def test_yaml_mistakes_are_refused_with_their_line(tmp_path):
    assert "recipe.yaml:2: epochs: key 'epochs' is written twice" in refusal(
        tmp_path, "epochs: 3\nepochs: 4\n"
    )
    assert "recipe.yaml:2:9: not valid YAML: mapping values are not allowed here" in refusal(
        tmp_path, "epochs: 3\n  labels: x\n"
    )
    assert "a mapping of recipe keys" in refusal(tmp_path, "- epochs\n")
    with pytest.raises(ConfigError, match="no such recipe file"):
        load_config(tmp_path / "missing.yaml")


def test_every_shipped_recipe_loads_and_round_trips():
    recipes = sorted(RECIPE_DIR.glob("*.yaml"))
    assert len(recipes) >= 4
    for path in recipes:
        config = load_config(path)
        assert TrainConfig.from_dict(config.to_dict()) == config
        assert config.pseudo_labels == "auto"


def test_command_line_overrides_are_checked_like_the_recipe():
    config = TrainConfig()
    assert config.with_overrides(epochs=3, labels=None).epochs == 3
    with pytest.raises(ConfigError, match=r"command line: epochs: 0: expected greater"):
        config.with_overrides(epochs=0)
    with pytest.raises(ConfigError, match="command line: short_clips: 'join': join needs"):
        config.with_overrides(short_clips="join")


def test_configs_built_in_python_are_validated_too():
    assert TrainConfig(model=ModelConfig(window_samples=32000), epochs=1).model.frames == 63
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=2.5)
    with pytest.raises(ValueError, match="hop_length"):
        ModelConfig(n_fft=512, hop_length=1024)


def test_a_recipe_saved_as_utf16_is_refused_by_fit_naming_the_encoding(tmp_path, capsys):
    # The shared reader of user YAML (edge_asd.config.yaml_file), as for the daemon config.
    from train.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes("epochs: 3\n# Lüfter\n".encode("utf-16"))  # Notepad's "Unicode"
    code = main(
        ["fit", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(recipe)]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        f"edge-asd-train fit: error: {recipe}:1:1: cannot read the recipe: it is saved as "
        f"UTF-16 (it starts with that byte-order mark); save the file as UTF-8 (in most "
        f"editors: Save as, Encoding: UTF-8)\n"
    )
    assert not (tmp_path / "run").exists()
