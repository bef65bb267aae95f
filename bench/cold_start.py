"""Cold start of the webhook function: time and memory to import the handler module in a fresh
interpreter (what Lambda's init phase pays before the first request), and which heavy modules
that import pulls in.

    python -m bench.cold_start [--runs 15] [--python /path/to/python3.13]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import summary, write

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import json, resource, sys, time
started = time.perf_counter()
import {module}
elapsed = (time.perf_counter() - started) * 1000
heavy = sorted(m for m in ("boto3", "botocore", "httpx", "pydantic", "yaml", "standardwebhooks",
                           "aws_xray_sdk", "jmespath") if m in sys.modules)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"import_ms": elapsed, "max_rss_mb": rss_mb, "heavy_modules": heavy}}))
"""


def measure(python: str, module: str, runs: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            str(ROOT / p) for p in ("layers/bridge", "functions/webhook", "functions/retry")
        ),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    samples = []
    for _ in range(runs + 1):  # the first run writes .pyc files, as the deployment package has them
        out = subprocess.run(
            [python, "-c", PROBE.format(module=module)], capture_output=True, text=True, env=env, check=True
        )
        samples.append(json.loads(out.stdout))
    samples = samples[1:]
    return {
        "module": module,
        "import_ms": summary([s["import_ms"] for s in samples]),
        "max_rss_mb": summary([s["max_rss_mb"] for s in samples]),
        "heavy_modules": samples[-1]["heavy_modules"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    results = [measure(args.python, m, args.runs) for m in ("webhook_handler", "retry_handler")]
    version = subprocess.run(
        [args.python, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    path = write("cold_start", {"interpreter": version, "runs": args.runs, "handlers": results})
    for r in results:
        imp, rss = r["import_ms"], r["max_rss_mb"]
        print(
            f"cold_start {r['module']}: import p50 {imp['p50']} ms p90 {imp['p90']} ms, "
            f"max RSS p50 {rss['p50']} MB, heavy modules at import: {', '.join(r['heavy_modules']) or 'none'}"
        )
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
