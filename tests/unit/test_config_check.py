"""`python -m sensor_bridge.config check`: every problem of a file at once, as `path: problem: fix`,
with the API's rules for profiles and the webhook secrets; the functions' start uses the same."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from local.lambda_runtime import cold_start
from local.provision import LOCAL_WEBHOOK_SECRETS
from sensor_bridge.model import config as config_model
from sensor_bridge.model.config import ConfigError
from sensor_bridge.model.config_problems import AUTH_TYPES
from sensor_bridge.store.config_check import check_config, main
from sensor_bridge.store.config_source import current_config

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "bridge.yaml"

# Six problems: a misspelled auth key (so its `secret` is missing too), a generic sensor without
# declarations, repeated sensor names, an ill-formed integration id, an empty one in `props`.
BROKEN = """
sources:
  my-farm:
    platform: chirpstack
    auth: {type: header, header: X-Token, secrt: farm}
  other-farm:
    platform: the-things-stack
    auth: {type: header, header: X-Token, secret: other}
profiles:
  - name: vibration
    match: {models: [acme/v1]}
    sensors:
      - {key: x, integration_id: GENERIC_SENSOR_SDE, name: Vibration}
      - {key: y, integration_id: temperature_sde, name: Vibration, metrics: [T], units: [C]}
default_profile:
  name: generic
  sensors:
    - {key: g, integration_id: GENERIC_SENSOR_SDE, name: G, unknown_metrics: [v], unknown_units: [u],
       props: {INTEGRATION_ID: ""}}
"""


def write(tmp_path: Path, text: str, name: str = "bridge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def lines(path: Path, *args: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = main(["check", str(path), *args], out=out)
    return code, out.getvalue().splitlines()


def test_every_problem_is_listed_as_path_problem_fix(tmp_path: Path) -> None:
    code, printed = lines(write(tmp_path, BROKEN))

    assert code == 1
    assert printed == [
        "sources.my-farm.auth.secret: required key is missing: add it",
        "sources.my-farm.auth.secrt: unknown key: remove it or check its spelling",
        "profiles.0.sensors: sensor name 'Vibration' is used by more than one sensor of the device: "
        "give each sensor its own name (the API's answer is matched to what was sent by NAME)",
        "profiles.0.sensors.0: a generic sensor (GENERIC_SENSOR_SDE) declares no metrics and no units, "
        "which the API refuses: add `unknown_metrics: [...]` (or `metrics: [...]`) and "
        "`unknown_units: [...]` (or `units: [...]`)",
        "profiles.0.sensors.1.integration_id: integration id 'temperature_sde' is not well formed: "
        "use the catalogue's id: upper-case words joined by '_', e.g. TEMPERATURE_SDE",
        "default_profile.sensors.0.props.INTEGRATION_ID: the integration id is empty: "
        "set the catalogue's id, e.g. TEMPERATURE_SDE",
        f"{tmp_path / 'bridge.yaml'}: 6 problems",
    ]


def test_the_path_never_carries_the_auth_type_tag(tmp_path: Path) -> None:
    auths = ("{type: header}", "{type: basic, username: u}", "{type: query}", "{type: standard-webhooks}")
    for auth in auths:
        text = BROKEN.replace("{type: header, header: X-Token, secrt: farm}", auth)
        problems = [str(p) for p in check_config(write(tmp_path, text))]
        assert "sources.my-farm.auth.secret: required key is missing: add it" in problems
        assert not [p for p in problems if any(f"auth.{tag}." in p for tag in AUTH_TYPES)]


def test_auth_tags_the_paths_leave_out_are_the_auth_types_of_the_model() -> None:
    variants = typing.get_args(typing.get_args(config_model.Auth)[0])
    tags = {typing.get_args(variant.model_fields["type"].annotation)[0] for variant in variants}
    assert tags == set(AUTH_TYPES)


def test_shipped_configuration_and_the_local_secrets_pass(tmp_path: Path) -> None:
    secrets = write(tmp_path, json.dumps(LOCAL_WEBHOOK_SECRETS), "secrets.json")
    code, printed = lines(SHIPPED, "--secrets", str(secrets))
    assert code == 0
    assert printed == [f"{SHIPPED}: ok, configuration and secrets"]


def test_a_secret_missing_from_the_secrets_file_is_named_without_any_value(tmp_path: Path) -> None:
    secrets = dict(LOCAL_WEBHOOK_SECRETS)
    del secrets["particle-demo"]
    secrets["generic-demo"] = "not-a-signing-secret!"
    path = write(tmp_path, json.dumps(secrets), "secrets.yaml")

    code, printed = lines(SHIPPED, "--secrets", str(path))

    assert code == 1
    assert printed[:2] == [
        f"sources.particle-demo.auth.secret: secret 'particle-demo' is not in {path}: "
        "add it there, or correct the name",
        f"sources.generic-demo.auth.secret: secret 'generic-demo' in {path} is not whsec_ followed by "
        "base64: use a random value of at least 16 characters (Standard Webhooks: the sender's "
        "`whsec_<base64>` of a 24-64 byte key)",
    ]
    assert not [line for line in printed if any(str(v) in line for v in secrets.values())]


def test_secrets_given_as_a_mapping_are_checked_too() -> None:
    problems = check_config(SHIPPED, {"ttn-demo": "a-long-enough-ttn-token"})
    assert {p.path for p in problems} == {
        f"sources.{name}.auth.secret" for name in LOCAL_WEBHOOK_SECRETS if name != "ttn-demo"
    }


@pytest.mark.parametrize(
    ("secret", "value", "why"),
    [
        ("ttn-demo", "fifteen-chars!!", "is shorter than 16 characters"),
        ("particle-demo", "pw-1234", "is shorter than 16 characters"),
        ("generic-demo", "whsec_ab", "decodes to a 1-byte key, not 24-64 bytes"),
    ],
)
def test_a_secret_too_weak_to_check_against_is_named_with_why(secret: str, value: str, why: str) -> None:
    problems = check_config(SHIPPED, {**LOCAL_WEBHOOK_SECRETS, secret: value})

    assert [p.problem for p in problems] == [f"secret {secret!r} in the webhook secrets {why}"]
    assert value not in str(problems[0])


def test_unreadable_or_wrong_secrets_file_is_one_problem(tmp_path: Path) -> None:
    missing = check_config(SHIPPED, tmp_path / "none.json")
    assert [str(p) for p in missing] == [
        f"{tmp_path / 'none.json'}: cannot read the secrets file (No such file or directory): check the path"
    ]
    listed = check_config(SHIPPED, write(tmp_path, "- a\n", "list.yaml"))
    assert [str(p) for p in listed] == [
        f"{tmp_path / 'list.yaml'}: expected a mapping: "
        'write a mapping of secret name to value, e.g. {"ttn-demo": "..."}'
    ]


def test_the_command_exits_non_zero_through_its_door(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "bridge")}
    run = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "sensor_bridge.config", "check", str(write(tmp_path, BROKEN))],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 1
    assert "sources.my-farm.auth.secret: required key is missing: add it" in run.stdout


def test_the_functions_start_fails_with_every_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(write(tmp_path, BROKEN)))
    cold_start()
    try:
        with pytest.raises(ConfigError) as failure:
            current_config()
    finally:
        monkeypatch.delenv("BRIDGE_CONFIG_FILE")
        cold_start()
    message = str(failure.value)
    assert message.startswith(f"{tmp_path / 'bridge.yaml'}: 6 problems\n")
    assert "  profiles.0.sensors.0: a generic sensor (GENERIC_SENSOR_SDE) declares no metrics" in message
    assert len(failure.value.problems) == 6
