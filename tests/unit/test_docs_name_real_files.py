"""The README and docs/ name files in backticks (`bench/readings.py`, `runtime/http.py`): each one
must exist, and each module the README's map of rooms names must sit in that room. A doc that
names a file renamed or gone sends a reader to nothing."""

from __future__ import annotations

import os
import re
from pathlib import Path

import sensor_bridge

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(sensor_bridge.__file__).parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A token in backticks that is a path to a file of these kinds (not a glob, not a command).
FILE = re.compile(r"[\w./-]+\.(?:py|yaml|yml|md|json|toml|sh|txt)")


def _tracked() -> list[str]:
    """The repository's files, relative to its root (hidden folders, caches and builds left out;
    hidden files at the top, such as `.pre-commit-config.yaml`, kept)."""
    found: list[str] = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "__pycache__"]
        found.extend(str((Path(folder) / f).relative_to(ROOT)) for f in files)
    return found


def named_files(text: str) -> set[str]:
    tokens = (t.strip("()") for t in re.findall(r"`([^`\s]+)`", text))
    # `../shared/...` is the project's reference, outside the repository.
    return {t.removeprefix("./") for t in tokens if FILE.fullmatch(t) and not t.startswith("../")}


def test_every_file_the_docs_name_exists() -> None:
    tracked = _tracked()
    missing = {
        f"{doc.relative_to(ROOT)}: {name}"
        for doc in DOCS
        for name in named_files(doc.read_text(encoding="utf-8"))
        if not any(path == name or path.endswith(f"/{name}") for path in tracked)
    }
    assert missing == set()


def test_every_module_the_map_of_rooms_names_is_in_its_room() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)/` \| [^|]+ \| (.+) \|$", readme, flags=re.MULTILINE)
    assert len(rows) >= 8  # the map itself is still there
    missing = [
        f"{room}/{module}"
        for room, examples in rows
        for module in re.findall(r"`([\w/]+\.py)`", examples)
        if not (PACKAGE / room / module).is_file()
    ]
    assert missing == []


def test_a_file_renamed_or_gone_is_found() -> None:
    text = "see `sensor_data/rate_gate.py` and `bench/readings.py`, run `make run`, `*.py` too"
    assert named_files(text) == {"sensor_data/rate_gate.py", "bench/readings.py"}
    tracked = _tracked()
    assert any(p.endswith("/bench/readings.py") or p == "bench/readings.py" for p in tracked)
    assert not any(p.endswith("/rate_gate.py") for p in tracked)
