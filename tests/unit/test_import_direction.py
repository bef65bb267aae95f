"""Imports inside sensor_bridge run one way (see the package docstring): read them all, lazy
imports inside functions included, and refuse any that goes the wrong way."""

from __future__ import annotations

import ast
from pathlib import Path

import sensor_bridge
from sensor_bridge import ALLOWED_IMPORTS

PACKAGE = Path(sensor_bridge.__file__).parent


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # `from sensor_bridge.store import registry` imports the module sensor_bridge.store.registry
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def _room(module: str) -> str | None:
    """The room of a dotted sensor_bridge module name; None for the top-level doors."""
    parts = module.split(".")
    if parts[0] != "sensor_bridge" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ALLOWED_IMPORTS else None


def wrong_way_imports(package: Path, allowed: dict[str, frozenset[str]]) -> list[str]:
    doors = {p.stem for p in package.glob("*.py")} - {"__init__"}
    problems: list[str] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if len(relative.parts) < 2:
            continue  # a door at the top may import anything
        room = relative.parts[0]
        for name in _imported(ast.parse(path.read_text(), str(path))):
            parts = name.split(".")
            if parts[0] == "sensor_bridge" and len(parts) > 1 and parts[1] in doors:
                problems.append(f"{relative}: a room may not import the command {name}")
            target = _room(name)
            if target is not None and target != room and target not in allowed[room]:
                problems.append(f"{relative}: {room} may not import {name} ({target})")
    return sorted(set(problems))


def test_every_room_is_in_the_rule() -> None:
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert rooms == set(ALLOWED_IMPORTS)


def test_every_room_says_what_it_holds_and_may_import() -> None:
    for room in ALLOWED_IMPORTS:
        doc = ast.get_docstring(ast.parse((PACKAGE / room / "__init__.py").read_text())) or ""
        assert "import" in doc.lower(), f"{room}/__init__.py must say what it may import"


def test_imports_run_one_way() -> None:
    assert wrong_way_imports(PACKAGE, ALLOWED_IMPORTS) == []


def test_a_wrong_way_import_is_caught(tmp_path: Path) -> None:
    for room in ("model", "delivery"):
        (tmp_path / room).mkdir()
        (tmp_path / room / "__init__.py").write_text('"""May import: runtime."""\n')
    (tmp_path / "delivery" / "send.py").write_text("from sensor_bridge.model.work import WorkItem\n")
    (tmp_path / "model" / "work.py").write_text(
        "def f() -> None:\n    from sensor_bridge.delivery import send\n"  # lazy, still wrong
    )
    (tmp_path / "redrive.py").write_text("from sensor_bridge.delivery import send\n")  # a door: fine
    (tmp_path / "delivery" / "bad.py").write_text("import sensor_bridge.redrive\n")
    allowed = {"model": frozenset[str](), "delivery": frozenset({"model"})}
    assert wrong_way_imports(tmp_path, allowed) == [
        "delivery/bad.py: a room may not import the command sensor_bridge.redrive",
        "model/work.py: model may not import sensor_bridge.delivery (delivery)",
        "model/work.py: model may not import sensor_bridge.delivery.send (delivery)",
    ]


def test_no_module_is_over_300_lines() -> None:
    """A module past this holds more than one concern: split it by what each part does."""
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 300
    }
    assert long == {}
