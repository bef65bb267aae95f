"""Cold start of both functions, as ratios measured alternately in one run.

1. For each handler, importing the handler module and importing its dependency set alone, in
   fresh interpreters, alternating (handler, deps, deps, handler, ...), with the environment
   Lambda gives a sampled, traced invocation. The ratio of the medians says what the handler costs
   beyond the libraries it cannot do without.
2. The webhook handler's import CPU with and without bytecode (the layer's build ships it).
3. The first request of a fresh webhook process (import + a new device through the real handler
   against the local stack over loopback) next to a second new device in the same process.

    python -m bench.cold_start [--pairs 9] [--processes 5] [--python .venv-py313/bin/python]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from typing import Any

from bench.common import summary, write
from local.lambda_tracing import ROOT, XRayDaemon, lambda_environment

PY313 = ROOT / ".venv-py313" / "bin" / "python"
# What each handler's first request cannot be answered without, imported by the handler or on
# that request: the AWS SDK (DynamoDB, SQS, Secrets Manager), the HTTP client (IMS, the API),
# pydantic's BaseModel (the contract and the configuration: `import pydantic` alone is a lazy
# stub that loads none of it), PyYAML (the configuration file) and the
# Powertools entry points the handler is written against. The X-Ray SDK is left out on purpose:
# tracing is ours to make cheap, so what it costs counts against the handler.
DEPENDENCIES = {
    "webhook_handler": [
        "boto3",
        "httpx",
        "pydantic.main",
        "yaml",
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.logging",
        "aws_lambda_powertools.metrics",
    ],
    "retry_handler": [
        "boto3",
        "httpx",
        "pydantic.main",
        "yaml",
        "aws_lambda_powertools.utilities.batch",
        "aws_lambda_powertools.logging",
        "aws_lambda_powertools.metrics",
    ],
}


def probe(python: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [python, "-m", "bench.cold_probe", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(f"probe {args} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def import_ratio(python: str, handler: str, pairs: int, daemon: str) -> dict[str, Any]:
    env = lambda_environment(handler.removesuffix("_handler"), daemon)
    deps = DEPENDENCIES[handler]
    probe(python, env, "import", handler)  # writes the .pyc files, as the deployment package has them
    samples: dict[str, list[dict[str, Any]]] = {"handler": [], "deps": []}
    for i in range(pairs):
        order = ("handler", "deps") if i % 2 == 0 else ("deps", "handler")  # ABBA: no drift bias
        for which in order:
            samples[which].append(probe(python, env, "import", *([handler] if which == "handler" else deps)))
    handler_ms = statistics.median(s["wall_ms"] for s in samples["handler"])
    deps_ms = statistics.median(s["wall_ms"] for s in samples["deps"])
    return {
        "handler": handler,
        "dependency_set": deps,
        "handler_import_ms": summary([s["wall_ms"] for s in samples["handler"]]),
        "deps_import_ms": summary([s["wall_ms"] for s in samples["deps"]]),
        "handler_import_cpu_ms": summary([s["cpu_ms"] for s in samples["handler"]]),
        "deps_import_cpu_ms": summary([s["cpu_ms"] for s in samples["deps"]]),
        "ratio": round(handler_ms / deps_ms, 3),
        "handler_max_rss_mb": statistics.median(s["max_rss_mb"] for s in samples["handler"]),
        "loaded_at_init": samples["handler"][-1]["loaded"],
    }


def without_bytecode(python: str, pairs: int, daemon: str) -> dict[str, Any]:
    """The webhook handler's import with bytecode (what layers/bridge/Makefile ships) and without
    (what SAM's python3.13 builder ships: no .pyc, so every module is compiled at each cold
    start), alternating. An empty PYTHONPYCACHEPREFIX hides every .pyc from the interpreter."""
    with tempfile.TemporaryDirectory() as empty:
        env = lambda_environment("webhook", daemon)
        bare = {**env, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        samples: dict[str, list[float]] = {"with": [], "without": []}
        for i in range(pairs):
            for which in ("with", "without") if i % 2 == 0 else ("without", "with"):
                result = probe(python, env if which == "with" else bare, "import", "webhook_handler")
                samples[which].append(result["cpu_ms"])
    return {
        "with_bytecode_cpu_ms": summary(samples["with"]),
        "without_bytecode_cpu_ms": summary(samples["without"]),
    }


def first_requests(python: str, processes: int) -> dict[str, Any]:
    from local.stack import LocalStack

    with LocalStack(), XRayDaemon() as daemon:
        env = lambda_environment("webhook", daemon.address)
        runs = [probe(python, env, "first-request", str(1000 + 10 * i)) for i in range(processes)]
    statuses = sorted({r[k]["status"] for r in runs for k in ("first", "second")})

    def median(key: str, part: str = "wall_ms") -> float:
        return round(float(statistics.median(r[key][part] for r in runs)), 2)

    return {
        "processes": processes,
        "import_ms": median("import"),
        "first_request_ms": median("first"),
        "second_request_ms": median("second"),
        "first_request_cpu_ms": median("first", "cpu_ms"),
        "second_request_cpu_ms": median("second", "cpu_ms"),
        "import_cpu_ms": median("import", "cpu_ms"),
        "statuses": statuses,
        "max_rss_mb": statistics.median(r["max_rss_mb"] for r in runs),
        "loaded_at_init": runs[-1]["loaded_at_init"],
        "loaded_by_first_request": runs[-1]["loaded_by_first_request"],
        "xray_segments_received": len(daemon.segments),
        "xray_subsegment_names": sorted(set(daemon.names())),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--python", default=str(PY313), help="the interpreter measured (default: 3.13)")
    args = parser.parse_args()
    version = subprocess.run(
        [args.python, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with XRayDaemon() as daemon:
        ratios = [import_ratio(args.python, h, args.pairs, daemon.address) for h in DEPENDENCIES]
        bytecode = without_bytecode(args.python, max(3, args.pairs // 2), daemon.address)
    first = first_requests(args.python, args.processes)
    path = write(
        "cold_start",
        {
            "interpreter": version,
            "pairs": args.pairs,
            "imports": ratios,
            "bytecode": bytecode,
            "first_request": first,
        },
    )
    for r in ratios:
        print(
            f"cold_start {r['handler']} ({version}): import p50 {r['handler_import_ms']['p50']} ms vs its "
            f"dependencies {r['deps_import_ms']['p50']} ms: ratio {r['ratio']} ({args.pairs} pairs)"
        )
    print(
        f"cold_start first request: import {first['import_ms']} ms + first webhook "
        f"{first['first_request_ms']} ms,"
        f" second webhook {first['second_request_ms']} ms (median of {first['processes']} processes,"
        f" statuses {first['statuses']}, {first['xray_segments_received']} X-Ray segments)"
    )
    print(
        f"cold_start webhook_handler import CPU: {bytecode['with_bytecode_cpu_ms']['p50']} ms with bytecode, "
        f"{bytecode['without_bytecode_cpu_ms']['p50']} ms without"
    )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
