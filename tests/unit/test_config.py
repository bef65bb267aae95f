"""The configuration file: the shipped one loads, and a wrong one fails naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor_bridge.model.config import PLATFORMS, ConfigError, load_config_file, parse_config

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "bridge.yaml"
PROFILE = """
default_profile:
  name: generic
  sensors: [{key: g, integration_id: GENERIC_SENSOR_SDE, name: G, unknown_metrics: [v], unknown_units: [u]}]
"""


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="bridge.yaml")
    return str(caught.value)


def test_shipped_config_declares_one_demo_source_per_platform() -> None:
    config = load_config_file(SHIPPED)
    assert sorted(s.platform for s in config.sources.values()) == sorted(PLATFORMS)
    assert config.sources["aws-iot-demo"].confirm_destinations is False


def test_misspelled_key_is_named_with_its_path() -> None:
    message = config_error("sources:\n  a:\n    platfrom: chirpstack\n    auth: {type: none}\n" + PROFILE)
    assert "sources.a.platfrom: unknown key: remove it or check its spelling" in message


def test_unknown_auth_type_lists_the_valid_ones() -> None:
    message = config_error(
        "sources:\n  a:\n    platform: chirpstack\n    auth: {type: hmac, secret: x}\n" + PROFILE
    )
    assert "sources.a.auth" in message
    assert "none, header, basic, query, standard-webhooks" in message


def test_source_name_that_is_not_a_url_segment_is_refused() -> None:
    message = config_error(
        "sources:\n  My_Source:\n    platform: chirpstack\n    auth: {type: none}\n"
        "    allow_unauthenticated: true\n" + PROFILE
    )
    assert "'My_Source'" in message
    assert "lower-case" in message


def test_standard_webhooks_source_without_mapping_says_what_to_add() -> None:
    text = "sources:\n  g:\n    platform: standard-webhooks\n    auth: {type: standard-webhooks, secret: s}\n"
    assert "needs a `mapping` with at least `device_id`" in config_error(text + PROFILE)


def test_standard_webhooks_source_must_verify_signatures() -> None:
    text = (
        "sources:\n  g:\n    platform: standard-webhooks\n    auth: {type: none}\n"
        "    allow_unauthenticated: true\n    mapping: {device_id: id}\n"
    )
    assert "auth: {type: standard-webhooks" in config_error(text + PROFILE)


def test_mapping_on_another_platform_is_refused() -> None:
    text = (
        "sources:\n  c:\n    platform: chirpstack\n    auth: {type: none}\n    allow_unauthenticated: true\n"
        "    mapping: {device_id: id}\n"
    )
    assert "only read for platform standard-webhooks" in config_error(text + PROFILE)


def test_confirm_destinations_outside_aws_is_refused() -> None:
    text = (
        "sources:\n  c:\n    platform: chirpstack\n    auth: {type: none}\n    allow_unauthenticated: true\n"
        "    confirm_destinations: false\n"
    )
    assert "only read for platform aws-iot-core" in config_error(text + PROFILE)


def test_event_types_without_event_type_path_are_refused() -> None:
    text = (
        "sources:\n  g:\n    platform: standard-webhooks\n    auth: {type: standard-webhooks, secret: s}\n"
        "    mapping: {device_id: id, appeared_types: [created]}\n"
    )
    assert "need `event_type`" in config_error(text + PROFILE)


def test_tolerance_wider_than_five_minutes_is_refused() -> None:
    text = (
        "sources:\n  g:\n    platform: particle\n"
        "    auth: {type: standard-webhooks, secret: s, tolerance_seconds: 900}\n"
    )
    message = config_error(text + PROFILE)
    # The path as written in the file: pydantic's union tag (`auth.standard-webhooks.`) left out.
    assert "sources.g.auth.tolerance_seconds: Input should be less than or equal to 300" in message
    assert "standard-webhooks.tolerance" not in message


def test_missing_default_profile_says_to_add_it() -> None:
    assert "default_profile: required key is missing: add it" in config_error("sources: {}\n")


def test_repeated_sensor_names_in_a_profile_are_refused() -> None:
    text = (
        "sources: {}\ndefault_profile:\n  name: d\n"
        "  sensors: [{key: a, integration_id: X, name: S}, {key: b, integration_id: X, name: S}]\n"
    )
    assert "default_profile.sensors: sensor name 'S' is used by more than one sensor" in config_error(text)


def test_file_that_is_not_a_mapping_or_not_yaml_is_refused() -> None:
    assert "expected a mapping" in config_error("- a\n- b\n")
    assert "not valid YAML" in config_error("sources: [\n")


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_config_file(tmp_path / "missing.yaml")


def test_no_auth_without_an_explicit_allow_unauthenticated_is_refused_naming_the_key() -> None:
    message = config_error("sources:\n  open:\n    platform: chirpstack\n    auth: {type: none}\n" + PROFILE)
    assert "sources.open" in message
    assert "allow_unauthenticated: true" in message


def test_no_auth_with_allow_unauthenticated_loads() -> None:
    text = (
        "sources:\n  open:\n    platform: chirpstack\n    auth: {type: none}\n"
        "    allow_unauthenticated: true\n"
    )
    assert parse_config(text + PROFILE).sources["open"].allow_unauthenticated is True


def test_allow_unauthenticated_next_to_a_real_auth_is_refused() -> None:
    text = (
        "sources:\n  c:\n    platform: chirpstack\n    auth: {type: header, secret: s}\n"
        "    allow_unauthenticated: true\n"
    )
    assert "`allow_unauthenticated` only goes with `auth: {type: none}`" in config_error(text + PROFILE)


def test_shipped_config_has_no_unauthenticated_source() -> None:
    assert not any(s.allow_unauthenticated for s in load_config_file(SHIPPED).sources.values())
