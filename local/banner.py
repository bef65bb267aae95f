"""What `serve` prints at start: what the stack reads, where to send webhooks, what it calls,
which clock it runs on, and the environment with which the operator commands reach it.

Names of secrets, never their values.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from local.template_routes import ROOT
from sensor_bridge.model.config import DEFAULT_CONFIG_FILE
from sensor_bridge.store.config_source import current_config

if TYPE_CHECKING:
    from local.stack import LocalStack

OPERATOR_ENV_FILE = ROOT / ".local-stack.env"
# What the bridge's settings and boto3 read, besides the functions' own environment.
AWS_NAMES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)
BRIDGE_NAMES = (
    "RETRY_QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL",
    "REGISTRY_TABLE",
    "IDEMPOTENCY_TABLE",
    "CREDENTIALS_SECRET_ID",
    "WEBHOOK_SECRETS_ID",
)


def _origin(stack: LocalStack, name: str) -> str:
    origin = stack.options.origins.get(name)
    return f" ({name} from {origin})" if origin else ""


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def config_lines(stack: LocalStack, gateway_url: str) -> list[str]:
    o = stack.options
    config_file = (
        _shown(o.config_file) if o.config_file else f"{_shown(DEFAULT_CONFIG_FILE)} (the bundled file)"
    )
    lines = [f"config:          {config_file}{_origin(stack, 'BRIDGE_CONFIG_FILE')}"]
    for name, source in current_config().sources.items():
        lines.append(f"  {name:<20} {source.platform:<18} POST {gateway_url}/webhooks/{name}")
    secrets = (
        f"{_shown(o.secrets_file)}{_origin(stack, 'WEBHOOK_SECRETS_FILE')}"
        if o.secrets_file
        else "the demo secrets in local/provision.py"
    )
    lines.append(f"webhook secrets: {secrets}: {', '.join(sorted(stack.webhook_secrets))} (values not shown)")
    return lines


def api_lines(stack: LocalStack) -> list[str]:
    o = stack.options
    api = stack.api_endpoints()
    if not stack.has_simulator:
        who = f"client {o.client_id}" if not o.access_token else "a static access token"
        return [
            f"Sensor Data API: {api.api_base_url}{_origin(stack, 'SENSOR_DATA_API_URL')}; no simulator",
            f"IMS token URL:   {api.token_url}  as {who} (secret not shown)",
            *([f"iTwin:           {o.itwin_id}"] if o.itwin_id else []),
            "clock:           real: a Retry-After is waited out in wall-clock seconds",
        ]
    sim = stack.simulator.url
    limit = stack.rate_limit.describe()
    return [
        f"Sensor Data API: {api.api_base_url} (the embedded simulator, rate limit {limit}; demo IMS client)",
        f"  state:  GET  {sim}/_sim/state",
        f'  faults: POST {sim}/_sim/faults  e.g. {{"faults": [{{"status": 429, "retry_after": "30"}}]}}',
        f'  config: POST {sim}/_sim/config  e.g. {{"rate_limit_per_minute": 8}}',
        "clock:           simulated: the retry poller fast-forwards while every queued message waits",
    ]


def operator_environment(stack: LocalStack) -> dict[str, str]:
    """The running stack's AWS endpoint, dummy credentials, queues, tables and secret ids (and
    the embedded simulator's URL, for its control endpoints)."""
    names = (*AWS_NAMES, *BRIDGE_NAMES)
    found = {name: os.environ[name] for name in names if name in os.environ}
    simulator = {"SIMULATOR_URL": stack.simulator.url} if stack.has_simulator else {}
    return {**found, **simulator, "PYTHONPATH": "layers/bridge"}


def export_line(stack: LocalStack) -> str:
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in operator_environment(stack).items())


def write_operator_env(stack: LocalStack) -> Path:
    """The export line, also as a file to source (`. ./.local-stack.env`); removed at stop."""
    OPERATOR_ENV_FILE.write_text(export_line(stack) + "\n", encoding="utf-8")
    return OPERATOR_ENV_FILE


def print_banner(stack: LocalStack, gateway_url: str, log_file: Path) -> None:
    lines = [
        f"local stack: gateway {gateway_url}; Ctrl-C stops it",
        *config_lines(stack, gateway_url),
        *api_lines(stack),
        f"logs:            JSON logs and EMF metrics go to {_shown(log_file)}",
        "operator commands (python -m sensor_bridge.redrive list, ... devices list) reach this stack with",
        f"  {export_line(stack)}",
        f"  (also in {OPERATOR_ENV_FILE.name} while it runs: . ./{OPERATOR_ENV_FILE.name})",
    ]
    print("\n".join(lines), flush=True)
