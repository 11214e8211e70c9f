"""What `edge-asd calibrate` (auto) chooses on generated steady machine sound with the
trained model, what it then detects, and the detectability table it writes and prints."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import pytest
import yaml

from edge_asd.cli import main
from edge_asd.faults import FAULT_KINDS
from edge_asd.synth import Fault, render_clip, write_wav

pytestmark = [pytest.mark.system, pytest.mark.slow]

MAX_LIKE_R = 0.9  # GWRP at r = 0.9 puts 65 % of the weight on the top 10 of 313 frames


@pytest.fixture(scope="module")
def calibrated(trained_model: Path, tmp_path_factory) -> dict:
    """`edge-asd calibrate` on three 30 s recordings of the generated fan (section 00):
    the YAML it wrote and what it printed."""
    folder = tmp_path_factory.mktemp("selection")
    (folder / "normal").mkdir()
    for i in range(3):
        write_wav(folder / "normal" / f"run_{i}.wav",
                  render_clip("fan", 0, "source", 30.0, seed=100 + i))  # fmt: skip
    out = folder / "fan1.yaml"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["calibrate", "--model", str(trained_model), "--machine", "fan1",
                     "--label", "fan/section_00", "--input", str(folder / "normal"),
                     "--quantile", "0.99", "--probes", "8", "--threads", "2",
                     "--out", str(out)])  # fmt: skip
    assert code == 0
    return {"folder": folder, "out": out, "yaml": yaml.safe_load(out.read_text()),
            "printed": printed.getvalue().splitlines()}  # fmt: skip


def score_json(model: Path, calibration: Path, files: list[Path], capsys) -> dict[str, dict]:
    capsys.readouterr()
    argv = ["score", "--model", str(model), "--calibration", str(calibration), "--json"]
    assert main([*argv, "--threads", "2", *map(str, files)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return {Path(r["file"]).name: r for r in map(json.loads, lines)}


def twfr_r(candidate_name: str) -> float | None:
    """The pooling decay of a twfr candidate's name (`twfr(r=0.5, ...)`), else None."""
    if not candidate_name.startswith("twfr(r="):
        return None
    return float(candidate_name[len("twfr(r=") :].split(",")[0])


def test_on_steady_machine_sound_selection_picks_a_max_like_pooling_for_transients(calibrated):
    selection = calibrated["yaml"]["selection"]
    candidates = selection["candidates"]

    def on_impulses(name: str) -> tuple[float, float]:
        return candidates[name]["auc"]["impulses"], candidates[name]["pauc"]["impulses"]

    max_like = [n for n in candidates if (twfr_r(n) is not None and twfr_r(n) <= MAX_LIKE_R)]
    others = [n for n in candidates if n not in max_like]
    best_is_max_like = max(map(on_impulses, max_like)) > max(map(on_impulses, others))
    chosen = calibrated["yaml"]["detector"]["components"]
    chosen_max_like = any(c["kind"] == "twfr" and c["params"]["r"] <= MAX_LIKE_R for c in chosen)
    assert best_is_max_like or chosen_max_like, selection["chosen"]


def test_the_calibrated_detector_alarms_on_bearing_impacts_and_not_on_fresh_normal_sound(
    calibrated, trained_model, capsys
):
    folder = calibrated["folder"]
    impacts = folder / "impacts.wav"
    write_wav(impacts, render_clip("fan", 0, "source", 30.0, seed=201,
                                   faults=(Fault("impacts", 0.0, 31.0),)))  # fmt: skip
    quiet = folder / "quiet.wav"
    write_wav(quiet, render_clip("fan", 0, "source", 30.0, seed=200))
    results = score_json(trained_model, calibrated["out"], [impacts, quiet], capsys)
    assert results["impacts.wav"]["anomalous"] is True
    assert results["impacts.wav"]["windows_above"] == results["impacts.wav"]["windows"]
    assert results["quiet.wav"]["anomalous"] is False


def test_the_detectability_table_covers_every_fault_kind_and_gain_in_file_and_summary(
    calibrated,
):
    table = calibrated["yaml"]["detectability"]
    assert set(table) == {*FAULT_KINDS, "gain"}
    printed = calibrated["printed"]
    for kind in FAULT_KINDS:
        assert any(line.strip().startswith(f"{kind} ") for line in printed), kind
    gain = table["gain"]["event_probability"]
    assert max(gain) <= 0.1, gain  # a gain change of up to 3 dB must not raise an event
    assert any("gain change (must not alarm)" in line for line in printed)


def test_a_stronger_fault_is_never_less_likely_to_raise_an_event(calibrated):
    for kind in FAULT_KINDS:
        row = calibrated["yaml"]["detectability"][kind]
        levels, events = row["levels_db"], row["event_probability"]
        assert levels == sorted(levels)
        assert all(a <= b for a, b in itertools.pairwise(events)), (kind, levels, events)
        assert events[-1] >= 0.9, (kind, events)  # the strongest level is detected
