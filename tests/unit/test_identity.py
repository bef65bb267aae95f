"""The edge's text cleaning and id rules, as properties over generated text (hypothesis)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sensor_bridge.model.device_event import DeviceEvent
from sensor_bridge.model.replies import RequestError
from sensor_bridge.model.text import MAX_NAME_LENGTH, clean_text, is_clean
from sensor_bridge.platforms.aws_iot_core import ThingName
from sensor_bridge.platforms.azure_event_grid import DeviceId
from sensor_bridge.platforms.identity import Eui64, EventId, at_the_edge
from sensor_bridge.platforms.things_stack import TtsId

# Every code point, surrogates included: what json.loads can hand an adapter.
ANY_TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=300)
HOSTILE = st.sampled_from(
    ["\x00", "\r", "\n", "\x1b", "\x85", "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\ud800"]
)
FEW = settings(max_examples=150, deadline=None)


@FEW
@given(ANY_TEXT, st.integers(min_value=1, max_value=200))
def test_cleaned_text_holds_nothing_invisible_and_fits(value: str, limit: int) -> None:
    cleaned = clean_text(value, limit)

    if cleaned is None:
        return
    assert len(cleaned) <= limit
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    cleaned.encode("utf-8")  # no lone surrogate is left to fail an encoder downstream
    for char in cleaned:
        category = unicodedata.category(char)
        assert char == " " or not (category.startswith(("C", "Z"))), (char, category)


@FEW
@given(ANY_TEXT)
def test_cleaning_twice_changes_nothing(value: str) -> None:
    once = clean_text(value, MAX_NAME_LENGTH)

    assert clean_text(once, MAX_NAME_LENGTH) == once
    assert once is None or is_clean(once)


@FEW
@given(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ,.()/-]{0,40}[A-Za-z0-9]", fullmatch=True).filter(
        lambda s: "  " not in s
    )
)
def test_an_ordinary_name_is_kept_as_it_is(name: str) -> None:
    assert clean_text(name) == name


class Ids(BaseModel):
    tts: TtsId | None = None
    eui: Eui64 | None = None
    event: EventId | None = None
    azure: DeviceId | None = None
    thing: ThingName | None = None


@FEW
@given(st.sampled_from(["tts", "eui", "event", "azure", "thing"]), ANY_TEXT)
def test_an_id_accepted_by_any_platform_rule_is_visible_ascii(field: str, value: str) -> None:
    try:
        accepted = getattr(Ids.model_validate({field: value}), field)
    except ValueError:
        return  # refused: the 400 case
    assert accepted == value
    assert value.isascii()
    assert value.isprintable()
    assert 0 < len(value) <= 128


@FEW
@given(
    st.sampled_from(
        [
            ("tts", "strain-gauge-01"),
            ("eui", "70B3D57ED005A401"),
            ("azure", "lux-sensor-07"),
            ("thing", "pier-env-11"),
        ]
    ),
    HOSTILE,
    st.integers(min_value=0, max_value=16),
)
def test_a_valid_id_with_one_hostile_character_inserted_is_refused(
    sample: tuple[str, str], hostile: str, at: int
) -> None:
    field, valid = sample
    Ids.model_validate({field: valid})

    with pytest.raises(ValueError, match="must be"):
        Ids.model_validate({field: valid[:at] + hostile + valid[at:]})


@FEW
@given(ANY_TEXT, ANY_TEXT, st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=5))
def test_the_edge_cleans_every_display_field(name: str, model: str, tags: dict[str, str]) -> None:
    event = DeviceEvent("s", "chirpstack", "0101010101010101", name=name, model=model, tags=tags)

    edged = at_the_edge(event)

    assert edged.name is None or (is_clean(edged.name) and len(edged.name) <= MAX_NAME_LENGTH)
    assert edged.model is None or is_clean(edged.model)
    assert all(is_clean(k) and is_clean(v) for k, v in edged.tags.items())
    assert edged.device_id == event.device_id


@pytest.mark.parametrize("device_id", ["", "a\x00b", "\u202eab", "a" * 257, "a\ud800"])
def test_the_edge_refuses_an_id_no_adapter_should_have_passed(device_id: str) -> None:
    with pytest.raises(RequestError) as caught:
        at_the_edge(DeviceEvent("s", "chirpstack", device_id))

    assert caught.value.status == 400


URL_PIECES = st.sampled_from(
    [
        "https://",
        "http://",
        "iot.eu-west-1.amazonaws.com",
        "evil.example",
        "@",
        ":443",
        "/confirmdestination/",
        "..",
        "/",
        "%2e",
        "?",
        "#",
        "\\",
        "tok-EN_1=",
        "\u202e",
        "\x00",
        ".cn",
        "IOT.",
    ]
)


@FEW
@given(st.lists(URL_PIECES, min_size=1, max_size=8).map("".join))
def test_an_enable_url_the_bridge_would_fetch_is_aws_iot_confirmation_path_only(url: str) -> None:
    from urllib.parse import urlsplit

    from sensor_bridge.platforms.aws_iot_core import checked_enable_url

    try:
        checked_enable_url(url)
    except RequestError:
        return
    parts = urlsplit(url)
    assert (parts.scheme, parts.port, parts.username, parts.query, parts.fragment) == (
        "https",
        None,
        None,
        "",
        "",
    )
    assert parts.hostname is not None
    assert parts.hostname.startswith("iot.")
    assert parts.hostname.endswith((".amazonaws.com", ".amazonaws.com.cn"))
    segments = parts.path.split("/")
    assert segments[:2] == ["", "confirmdestination"]
    assert len(segments) == 3
    assert segments[2] not in ("", ".", "..")
