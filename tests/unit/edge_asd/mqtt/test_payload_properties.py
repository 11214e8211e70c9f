"""Payload sizes are bounded, and config names cannot reach into other topics (hypothesis).

Names end up in topic levels (`{prefix}/{device_id}/{machine}/event`): whatever text a
config holds, an accepted name adds exactly its own levels, without wildcards, `$` or NUL.
Whatever an event or the stats carry (long names, non-finite or huge numbers, a device's
error message of any length), the message stays under its bound and is valid JSON.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from edge_asd.config.types import NAME_PATTERN, Name, TopicPrefix
from edge_asd.decider import DecisionEvent
from edge_asd.evidence.layout import longest_clip_json_chars
from edge_asd.mqtt.payloads import (
    MAX_CLIP_JSON_CHARS,
    MAX_EVENT_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_STRING_CHARS,
    PayloadTooLarge,
    Topics,
    encode,
    event_payload,
)
from edge_asd.stats import Stats

NAME = TypeAdapter(Name)
PREFIX = TypeAdapter(TopicPrefix)
hostile_text = st.text(
    alphabet=st.one_of(st.sampled_from(list("/+#$\x00 .-_aZ9\n")), st.characters(codec="utf-8")),
    max_size=80,
)
valid_name = st.from_regex(NAME_PATTERN, fullmatch=True)


def accepted(adapter: TypeAdapter, text: str) -> bool:
    try:
        adapter.validate_python(text)
    except ValidationError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(name=hostile_text)
def test_an_accepted_name_is_exactly_one_plain_topic_level(name: str):
    if not accepted(NAME, name):
        assert not NAME_PATTERN.fullmatch(name)
        return
    topic = Topics("edge-asd", "dev-1").event(name)
    assert topic.split("/") == ["edge-asd", "dev-1", name, "event"]
    assert not set(name) & set("/+#$\x00 ") and name.isascii() and 1 <= len(name) <= 64


@settings(max_examples=400, deadline=None)
@given(prefix=hostile_text, device=hostile_text)
def test_an_accepted_prefix_and_device_id_never_widen_or_escape_a_subscription(prefix, device):
    if not (accepted(PREFIX, prefix) and accepted(NAME, device)):
        return
    topic = Topics(prefix, device).available
    levels = topic.split("/")
    assert all(levels), f"an empty level in {topic!r}"
    assert levels[-2:] == [device, "available"]
    assert not topic.startswith("$") and not set(topic) & set("+#\x00 ")


@pytest.mark.parametrize(
    "name", ["pump/#", "+", "#", "pump 1", "$SYS", "a/../b", "", "x" * 65, "pümpe", "a\x00b"]
)
def test_names_that_would_inject_a_topic_are_refused(name: str):
    with pytest.raises(ValidationError, match="letters, digits"):
        NAME.validate_python(name)


@pytest.mark.parametrize("prefix", ["/edge", "edge/", "a//b", "edge/#", "+/x", "$SYS/x"])
def test_prefixes_with_empty_levels_wildcards_or_dollar_are_refused(prefix: str):
    with pytest.raises(ValidationError):
        PREFIX.validate_python(prefix)


number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**60), 2**60))
moment = st.floats(0, 2**33, allow_nan=False)  # 1970 .. the year 2242
# Evidence folders config validation allows (longest_clip_json_chars <= MAX_CLIP_JSON_CHARS,
# the worst being 12 JSON characters per astral character), with the longest clip under them
evidence_root = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=22), st.text(max_size=260).filter(str.isascii)
).map(lambda text: "/" + text)
clip = st.one_of(
    st.none(),
    evidence_root.map(lambda root: f"{root}/{'m' * 64}/20261130T120000Z_{'0' * 36}/start.flac"),
)


@settings(max_examples=300, deadline=None)
@given(
    device=valid_name,
    machine=valid_name,
    kind=st.sampled_from(["start", "update", "end"]),
    started=moment,
    ended=st.one_of(st.none(), moment),
    score=number,
    peak=number,
    seq=st.integers(1, 2**63 - 1),
    synced=st.booleans(),
    offset=st.one_of(st.none(), number),
    clip=clip,
)
def test_any_event_fits_its_bound_as_valid_json(
    device, machine, kind, started, ended, score, peak, seq, synced, offset, clip
):
    if clip is not None:  # what config validation lets through
        root = clip[: -len(f"/{'m' * 64}/20261130T120000Z_{'0' * 36}/start.flac")]
        assume(longest_clip_json_chars(root) <= MAX_CLIP_JSON_CHARS)
    event = DecisionEvent(kind, "0" * 36, started, ended, score, peak, 1.5, 3)
    payload = event_payload(
        event, device_id=device, machine=machine, model_sha256="f" * 64, seq=seq,
        clock_synced=synced, level_offset_db=offset, clip=clip,
    )  # fmt: skip
    data = encode(payload, max_bytes=MAX_EVENT_BYTES)
    decoded = json.loads(data)
    assert decoded["seq"] == seq and decoded["machine"] == machine
    assert decoded["clip"] == clip
    for key in ("score", "peak_score", "level_offset_db"):
        value = payload[key]
        if value is None or not math.isfinite(value):
            assert decoded[key] is None
        else:
            assert decoded[key] == value
    if ended is not None:
        assert decoded["ended_at"] >= decoded["started_at"]  # ISO strings sort as times


def test_stats_of_the_largest_config_with_huge_error_messages_fit_their_bound():
    stats = Stats(engine="onnxruntime", engine_fallback_reason="e" * 100_000)
    for index in range(64):  # the most machines a config may have, with the longest names
        stats.add_machine(f"{index:02d}" + "m" * 62, 1.0, 1.0, 0.01)
    error = "PortAudio said: " + "x" * 50_000
    failing_input = {"state": "reopening", "last_error": error, "reason": error}
    stats.add_source("inputs", lambda: {f"{i:02d}" + "s" * 62: failing_input for i in range(16)})
    stats.add_source("outbox_error", lambda: "disk I/O error " * 10_000)
    data = encode(stats.snapshot())
    assert len(data) <= MAX_PAYLOAD_BYTES
    decoded = json.loads(data)
    assert len(decoded["machines"]) == 64 and len(decoded["inputs"]) == 16
    assert len(decoded["outbox_error"]) == MAX_STRING_CHARS
    assert decoded["outbox_error"].startswith("disk I/O error")


def test_a_payload_over_its_bound_is_refused_not_sent():
    with pytest.raises(PayloadTooLarge, match="over the 1024 allowed"):
        encode({f"key{i}": "v" * 100 for i in range(20)}, max_bytes=MAX_EVENT_BYTES)
