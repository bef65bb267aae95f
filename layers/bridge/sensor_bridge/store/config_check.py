"""Checking a configuration file before anything starts: `python -m sensor_bridge.config check`.

    python -m sensor_bridge.config check FILE [--secrets SECRETS_FILE]
        every problem as `path: problem: fix`, exit 1; `FILE: ok ...`, exit 0

The same checks run when the functions load their configuration (`store.config_source`); given
the webhook secrets (a JSON or YAML mapping of secret name to value, the file the local stack
takes), it also checks that every source's secret is there and usable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from sensor_bridge.model.config import ConfigError, examine_config, read_config_text
from sensor_bridge.model.config_problems import Problem
from sensor_bridge.model.secret_strength import MAX_KEY_BYTES, MIN_KEY_BYTES, MIN_SECRET_CHARS, weakness

Secrets = Mapping[str, Any]


def check_config(path: str | Path, secrets: str | Path | Secrets | None = None) -> list[Problem]:
    """Every problem of the configuration file at `path` ([] when it is good). `secrets`: the
    webhook secrets, as a file or a mapping; None skips the secrets check."""
    try:
        checked = examine_config(read_config_text(path))
    except ConfigError as exc:
        return exc.problems
    if secrets is None:
        return checked.problems
    if isinstance(secrets, Mapping):
        values, origin = secrets, "the webhook secrets"
    else:
        values, origin, unreadable = _read_secrets(Path(secrets))
        if unreadable:
            return checked.problems + unreadable
    return checked.problems + secret_problems(checked.data, values, origin)


def _read_secrets(path: Path) -> tuple[Secrets, str, list[Problem]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        unreadable = Problem(str(path), f"cannot read the secrets file ({exc.strerror})", "check the path")
        return {}, str(path), [unreadable]
    except yaml.YAMLError as exc:
        return {}, str(path), [Problem(str(path), f"not valid JSON or YAML ({exc})", "correct the syntax")]
    if not isinstance(data, Mapping):
        fix = 'write a mapping of secret name to value, e.g. {"ttn-demo": "..."}'
        return {}, str(path), [Problem(str(path), "expected a mapping", fix)]
    return data, str(path), []


def secret_problems(data: Mapping[str, Any], secrets: Secrets, origin: str) -> list[Problem]:
    """Each source's `auth.secret` names a value in `secrets` that its auth type can use.
    Problems name the secret, never its value."""
    sources = data.get("sources")
    if not isinstance(sources, Mapping):
        return []
    problems: list[Problem] = []
    for name, source in sources.items():
        auth = source.get("auth") if isinstance(source, Mapping) else None
        secret = auth.get("secret") if isinstance(auth, Mapping) else None
        if not isinstance(auth, Mapping) or not isinstance(secret, str):
            continue  # no secret to look up (type none), or the shape check reports it
        where = f"sources.{name}.auth.secret"
        value = secrets.get(secret)
        if value is None or str(value) == "":
            problems.append(
                Problem(where, f"secret {secret!r} is not in {origin}", "add it there, or correct the name")
            )
        elif (why := weakness(str(auth.get("type")), str(value))) is not None:
            problems.append(Problem(where, f"secret {secret!r} in {origin} {why}", _STRONG_SECRET))
    return problems


_STRONG_SECRET = (
    f"use a random value of at least {MIN_SECRET_CHARS} characters (Standard Webhooks: the sender's "
    f"`whsec_<base64>` of a {MIN_KEY_BYTES}-{MAX_KEY_BYTES} byte key)"
)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m sensor_bridge.config", description="the configuration")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="every problem of a configuration file, as path: problem: fix")
    check.add_argument("file", help="the configuration file (YAML), e.g. config/bridge.yaml")
    check.add_argument("--secrets", help="the webhook secrets (JSON or YAML: secret name -> value)")
    args = parser.parse_args(argv)
    problems = check_config(args.file, args.secrets)
    for problem in problems:
        print(problem if problem.path else f"{args.file}: {problem}", file=out)
    if problems:
        print(f"{args.file}: {len(problems)} problem{'s' if len(problems) > 1 else ''}", file=out)
        return 1
    checked = "configuration and secrets" if args.secrets else "configuration (secrets not checked)"
    print(f"{args.file}: ok, {checked}", file=out)
    return 0
