"""Where the local stack points: flags over environment over env file, contradictions refused,
and secrets kept out of flags and reprs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from local.options import OptionsError, StackOptions, add_flags, load_secrets_file, resolve
from local.sim_rate_limit import RateLimit, add_rate_limit_arguments

EXTERNAL = {
    "SENSOR_DATA_API_URL": "http://127.0.0.1:9/sensor-data",
    "IMS_CLIENT_ID": "my-client",
    "IMS_CLIENT_SECRET": "s3cret-value",
}


def options(*argv: str, environ: dict[str, str] | None = None) -> StackOptions:
    parser = argparse.ArgumentParser()
    add_rate_limit_arguments(parser)
    add_flags(parser)
    return resolve(parser.parse_args(list(argv)), environ or {})


def env_file(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / "local.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def test_nothing_given_is_the_embedded_demo(tmp_path: Path) -> None:
    chosen = options("--env-file", str(env_file(tmp_path)))

    assert not chosen.external
    assert chosen.credentials() is None
    assert chosen.port == 3000


def test_flag_wins_over_environment_which_wins_over_the_env_file(tmp_path: Path) -> None:
    path = env_file(tmp_path, **EXTERNAL, ITWIN_ID="from-file", BRIDGE_PORT="4001")

    chosen = options("--env-file", str(path), "--port", "4003", environ={"ITWIN_ID": "from-env"})

    assert chosen.itwin_id == "from-env"
    assert chosen.port == 4003
    assert chosen.api_url == EXTERNAL["SENSOR_DATA_API_URL"]
    assert chosen.origins["SENSOR_DATA_API_URL"] == "local.env"
    assert chosen.origins["ITWIN_ID"] == "environment"
    assert chosen.origins["BRIDGE_PORT"] == "flag"


def test_external_api_takes_the_client_credentials_and_never_shows_the_secret(tmp_path: Path) -> None:
    chosen = options("--env-file", str(env_file(tmp_path, **EXTERNAL)))

    assert chosen.external
    assert chosen.credentials() == {
        "client_id": "my-client",
        "client_secret": "s3cret-value",
        "scope": "itwin-platform",
    }
    assert "s3cret-value" not in repr(chosen)


def test_a_static_token_is_used_instead_of_client_credentials(tmp_path: Path) -> None:
    path = env_file(tmp_path, SENSOR_DATA_API_URL="http://x/sensor-data", IMS_ACCESS_TOKEN="tok")
    assert options("--env-file", str(path)).credentials() == {"access_token": "tok"}


def test_rate_limit_from_the_env_file_or_the_flag(tmp_path: Path) -> None:
    path = env_file(tmp_path, RATE_LIMIT="12")

    assert options("--env-file", str(path)).rate_limit == RateLimit("custom", 12, None)
    assert options("--env-file", str(path), "--tier", "trial").rate_limit == RateLimit("custom", 12, 5000)
    assert options("--env-file", str(env_file(tmp_path))).rate_limit == RateLimit()


def test_secrets_have_no_flag() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser)
    assert "--client-secret" not in parser.format_help()
    assert "--access-token" not in parser.format_help()


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"SENSOR_DATA_API_URL": "http://x/sensor-data"}, "IMS_CLIENT_ID and IMS_CLIENT_SECRET"),
        ({"IMS_CLIENT_ID": "a", "IMS_CLIENT_SECRET": "b"}, "without SENSOR_DATA_API_URL"),
        ({**EXTERNAL, "RATE_LIMIT": "5"}, "RATE_LIMIT limits the embedded simulator"),
        ({"TIER": "gold"}, "rate limit: tier must be one of"),
        ({"RATE_LIMIT": "many"}, "RATE_LIMIT='many': not a whole number"),
        ({"BRIDGE_PORT": "0"}, "BRIDGE_PORT=0: must be positive"),
    ],
)
def test_contradictory_or_wrong_settings_are_refused_naming_them(
    tmp_path: Path, values: dict[str, str], named: str
) -> None:
    with pytest.raises(OptionsError, match=named.replace("(", r"\(")):
        options("--env-file", str(env_file(tmp_path, **values)))


def test_a_named_env_file_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="env file not found"):
        options("--env-file", str(tmp_path / "nope.env"))


def test_secrets_file_is_json_or_yaml_mapping_names_to_values(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"my-source": "v1"}', encoding="utf-8")
    (tmp_path / "s.yaml").write_text("my-source: v2\n", encoding="utf-8")

    assert load_secrets_file(tmp_path / "s.json") == {"my-source": "v1"}
    assert load_secrets_file(tmp_path / "s.yaml") == {"my-source": "v2"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [("[1, 2]", "expected a mapping"), ("a: 3\n", "non-empty string; not so for ['a']"), ("{", "not valid")],
)
def test_a_wrong_secrets_file_says_what_is_wrong(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OptionsError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_secrets_file(path)
