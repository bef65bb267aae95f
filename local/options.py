"""Where the local stack points and what it loads: flags, then the environment, then an env file.

Every setting has one name, used alike as a `make` variable (make passes its command-line
variables to the recipe's environment), an environment variable, and a key in the env file
(`local.env` in the repository, git-ignored; `local.env.example` lists every key). A flag wins
over the environment, the environment over the file. Secrets have no flag, so that they stay
out of shell history, `ps` and make's echo of the command.

Without SENSOR_DATA_API_URL the embedded simulator serves the API and IMS, with its demo
client, on simulated time. With it, the bridge calls that API with your credentials, on the real
clock: a `Retry-After` is waited out in wall-clock seconds.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from local.sim_rate_limit import RateLimit
from local.template_routes import ROOT

DEFAULT_ENV_FILE = ROOT / "local.env"
BENTLEY_TOKEN_URL = "https://ims.bentley.com/connect/token"
IMS_SCOPE = "itwin-platform"


class OptionsError(ValueError):
    """A setting is missing, contradictory or unreadable; the message names it and the fix."""


@dataclass(frozen=True)
class Setting:
    name: str  # the make variable, environment variable and env-file key
    flag: str | None  # None for secrets, and for flags another module adds
    help: str
    dest: str | None = None  # the argparse dest of a flag another module adds

    @property
    def arg(self) -> str:
        return self.dest or self.name


SETTINGS = (
    Setting("SENSOR_DATA_API_URL", "--api-url", "Sensor Data API base URL (unset: the embedded simulator)"),
    Setting("IMS_TOKEN_URL", "--token-url", f"IMS token endpoint (default with an API: {BENTLEY_TOKEN_URL})"),
    Setting("IMS_CLIENT_ID", "--client-id", "your service application's client id"),
    Setting("IMS_CLIENT_SECRET", None, "its client secret (environment or env file only)"),
    Setting("IMS_ACCESS_TOKEN", None, "a static access token instead of client credentials"),
    Setting("ITWIN_ID", "--itwin-id", "sent as ?iTwinId= on integrate calls"),
    Setting("BRIDGE_CONFIG_FILE", "--config", "the bridge configuration file (default: the bundled one)"),
    Setting("WEBHOOK_SECRETS_FILE", "--secrets", "JSON/YAML file: webhook secret name -> value"),
    Setting("BRIDGE_PORT", "--port", "the gateway's port (serve; default 3000)"),
    # The simulator's rate limit: local/sim_rate_limit.py adds these flags (--tier, --rate-limit,
    # --rate-limit-hour) and its defaults.
    Setting("TIER", None, "the embedded simulator's rate-limit tier", dest="tier"),
    Setting("RATE_LIMIT", None, "the embedded simulator's requests per minute", dest="rate_limit"),
    Setting("RATE_LIMIT_HOUR", None, "the embedded simulator's requests per hour", dest="rate_limit_hour"),
)
RATE_SETTINGS = ("TIER", "RATE_LIMIT", "RATE_LIMIT_HOUR")


@dataclass(frozen=True)
class StackOptions:
    """What the local stack is pointed at. The defaults are the embedded demo."""

    api_url: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    itwin_id: str | None = None
    config_file: Path | None = None
    secrets_file: Path | None = None
    port: int = 3000
    rate_limit: RateLimit = field(default_factory=RateLimit)
    origins: dict[str, str] = field(default_factory=dict)  # setting name -> where it came from

    @property
    def external(self) -> bool:
        """An API of yours, not the embedded simulator: real credentials, real clock."""
        return self.api_url is not None

    def credentials(self) -> dict[str, str] | None:
        """The credentials secret's value; None for the embedded simulator's demo client."""
        if self.access_token:
            return {"access_token": self.access_token}
        if self.client_id and self.client_secret:
            return {"client_id": self.client_id, "client_secret": self.client_secret, "scope": IMS_SCOPE}
        return None

    def webhook_secrets(self) -> dict[str, str] | None:
        """The webhook secrets file's map; None for the demo secrets."""
        return load_secrets_file(self.secrets_file) if self.secrets_file else None


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help=f"settings file (default {DEFAULT_ENV_FILE.name})")
    for setting in SETTINGS:
        if setting.flag:
            parser.add_argument(setting.flag, dest=setting.name, help=f"{setting.help} [{setting.name}]")


def resolve(args: argparse.Namespace, environ: dict[str, str] | None = None) -> StackOptions:
    """Flags over environment over env file; checked for contradictions."""
    environ = dict(os.environ) if environ is None else environ
    env_file: Path | None = args.env_file or (
        Path(environ["LOCAL_ENV_FILE"]) if environ.get("LOCAL_ENV_FILE") else None
    )
    if env_file is not None and not env_file.is_file():
        raise OptionsError(f"{env_file}: env file not found")
    from_file = _read_env_file(env_file or DEFAULT_ENV_FILE)
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    layers = (
        ((env_file or DEFAULT_ENV_FILE).name, from_file),
        ("environment", environ),
        (
            "flag",
            {s.name: str(getattr(args, s.arg)) for s in SETTINGS if getattr(args, s.arg, None) is not None},
        ),
    )
    for origin, layer in layers:
        for setting in SETTINGS:
            value = layer.get(setting.name)
            if value:
                values[setting.name] = value
                origins[setting.name] = origin
    return _checked(_build(values, origins, getattr(args, "default_per_minute", None)))


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v}


def _integer(values: dict[str, str], name: str) -> int | None:
    if name not in values:
        return None
    try:
        number = int(values[name])
    except ValueError:
        raise OptionsError(f"{name}={values[name]!r}: not a whole number") from None
    if number <= 0:
        raise OptionsError(f"{name}={number}: must be positive")
    return number


def _rate_limit(values: dict[str, str], default_per_minute: int | None) -> RateLimit:
    given = [values.get(n) for n in RATE_SETTINGS]
    minute, hour = _integer(values, "RATE_LIMIT"), _integer(values, "RATE_LIMIT_HOUR")
    if given == [None, None, None] and not values.get("SENSOR_DATA_API_URL"):
        minute = default_per_minute
    try:
        return RateLimit.of(values.get("TIER"), minute, hour)
    except ValueError as exc:
        raise OptionsError(f"rate limit: {exc}") from None


def _build(values: dict[str, str], origins: dict[str, str], default_per_minute: int | None) -> StackOptions:
    def path(name: str) -> Path | None:
        return Path(values[name]) if name in values else None

    return StackOptions(
        api_url=values.get("SENSOR_DATA_API_URL"),
        token_url=values.get("IMS_TOKEN_URL"),
        client_id=values.get("IMS_CLIENT_ID"),
        client_secret=values.get("IMS_CLIENT_SECRET"),
        access_token=values.get("IMS_ACCESS_TOKEN"),
        itwin_id=values.get("ITWIN_ID"),
        config_file=path("BRIDGE_CONFIG_FILE"),
        secrets_file=path("WEBHOOK_SECRETS_FILE"),
        port=_integer(values, "BRIDGE_PORT") or 3000,
        rate_limit=_rate_limit(values, default_per_minute),
        origins=origins,
    )


def _checked(options: StackOptions) -> StackOptions:
    own_credentials = options.client_id or options.client_secret or options.access_token
    if options.external:
        if options.credentials() is None:
            raise OptionsError(
                "SENSOR_DATA_API_URL is set but the credentials are not: set IMS_CLIENT_ID and "
                "IMS_CLIENT_SECRET (or IMS_ACCESS_TOKEN)"
            )
        given = [name for name in RATE_SETTINGS if name in options.origins]
        if given:
            raise OptionsError(
                f"{', '.join(given)} limits the embedded simulator: unset it with SENSOR_DATA_API_URL"
            )
        return options
    if own_credentials or options.token_url:
        raise OptionsError(
            "IMS settings without SENSOR_DATA_API_URL: the embedded simulator knows only its demo "
            "client; set SENSOR_DATA_API_URL to use your own"
        )
    return options


def load_secrets_file(path: Path) -> dict[str, str]:
    """A JSON or YAML mapping of webhook secret name -> value (the WEBHOOK_SECRETS_ID secret)."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OptionsError(f"{path}: cannot read the webhook secrets file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise OptionsError(f"{path}: not valid JSON or YAML: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise OptionsError(f'{path}: expected a mapping of secret name -> value, e.g. {{"my-source": "..."}}')
    wrong = sorted(str(k) for k, v in data.items() if not isinstance(v, str) or not v)
    if wrong:
        raise OptionsError(f"{path}: every value must be a non-empty string; not so for {wrong}")
    return {str(k): v for k, v in data.items()}
