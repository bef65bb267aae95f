"""The shell snippets of README.md and docs/*.md, run as a reader runs them, so they cannot drift.

Every ```sh or ```bash block is collected, except one whose preceding line is
`<!-- not run by the docs test: REASON -->`: it needs AWS, a deployed stack or a Bentley account,
or it keeps a server up. Those are never collected (so nothing here is skipped); a test checks
that each says why.

A document's blocks run in order in one bash session (`set -euo pipefail`), as typed into one
terminal, in the repository, against what they address: `make serve`'s stack (started here as
make starts it; `127.0.0.1:3000` is rewritten to its port, and it writes `.local-stack.env`) and
a standalone simulator (`127.0.0.1:8765` is rewritten to its port). `make` runs with its
environment taken as installed (`-o .venv/.installed`): the test never reinstalls the venv.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.local_processes import Serve, clean_env, free_port, simulator_process

pytestmark = pytest.mark.e2e

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(sh|bash)\s*$")
NOT_RUN = re.compile(r"^<!-- not run by the docs test: (?P<reason>.*?) -->$")
PRELUDE = 'set -euo pipefail\nmake() { command make -o .venv/.installed "$@"; }\n'


@dataclass(frozen=True)
class Snippet:
    doc: str
    line: int
    code: str
    not_run: str | None  # the reason given, for a block the test does not run


def snippets(path: Path) -> Iterator[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            before = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            marked = NOT_RUN.match(before)
            code = "\n".join(lines[index + 1 : end])
            yield Snippet(path.relative_to(ROOT).as_posix(), index + 1, code, marked and marked["reason"])
            index = end
        index += 1


ALL = [snippet for path in DOCS for snippet in snippets(path)]
RUN = {d: [s for s in ALL if s.doc == d and s.not_run is None] for d in dict.fromkeys(s.doc for s in ALL)}


def test_every_snippet_not_run_says_why_and_most_docs_have_some_that_run() -> None:
    assert all(s.not_run and len(s.not_run) > 10 for s in ALL if s.not_run is not None)
    assert sum(len(run) for run in RUN.values()) >= 10
    with_runs = {doc for doc, run in RUN.items() if run}
    assert with_runs >= {"README.md", "docs/OPERATIONS.md", "docs/SIMULATOR.md"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`make serve` (the embedded demo, whatever local.env says) and a standalone simulator."""
    empty_env = tmp_path_factory.mktemp("docs") / "empty.env"
    empty_env.write_text("", encoding="utf-8")
    port = free_port()
    serve = Serve("--env-file", str(empty_env), "--port", str(port))
    try:
        serve.read_banner()
        with simulator_process() as simulator:
            yield {"127.0.0.1:3000": f"127.0.0.1:{port}", "127.0.0.1:8765": simulator.removeprefix("http://")}
    finally:
        serve.stop()


def script(doc: str, addresses: dict[str, str]) -> str:
    parts = [PRELUDE]
    for snippet in RUN[doc]:
        code = snippet.code
        for documented, running in addresses.items():
            code = code.replace(documented, running)
        parts.append(f"echo '--- {doc}:{snippet.line}' >&2\n{code}\n")
    return "\n".join(parts)


@pytest.mark.parametrize("doc", [doc for doc, run in RUN.items() if run])
def test_the_snippets_of_a_doc_run(doc: str, servers: dict[str, str]) -> None:
    done = subprocess.run(  # noqa: S603 - the docs' own snippets
        ["/bin/bash", "-c", script(doc, servers)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )

    failed_at = [line for line in done.stderr.splitlines() if line.startswith("--- ")][-1:]
    assert done.returncode == 0, f"{failed_at}: {done.stderr[-3000:]}"
