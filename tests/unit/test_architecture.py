"""The house rules, checked on the source: no import loops in psenet_stream, only io/ imports
av, only backends/tensorrt.py imports torch_tensorrt (docs/ARCHITECTURE.md, "Imports").

Every import statement counts, including those inside functions (a lazy import is still a
dependency), except those under ``if TYPE_CHECKING:``. ``from pkg import name`` is an edge
to ``pkg.name`` when that is a module, else to ``pkg``. Importing ``pkg.mod`` runs
``pkg/__init__`` too, but that implicit edge is not counted: a registry package may import
its implementations lazily while they import its sibling modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "psenet_stream"
ROOT = PKG.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) for every import in the file, TYPE_CHECKING blocks excluded."""
    tree = ast.parse(path.read_text(), str(path))
    this = _module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append((sub if sub in MODULES else mod, node.lineno))
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
                out.append((str(node.args[0].value), node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {name for name, _ in _imports(p) if name in MODULES and name != m} for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_the_walk_sees_the_package():
    assert "psenet_stream.pipeline" in MODULES and "psenet_stream.io.video" in MODULES
    g = _graph()
    assert "psenet_stream.io.frames" in g["psenet_stream.pipeline"]


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import loops (each line is one group of modules that import each other):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_loop():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "top, allowed",
    [
        ("av", lambda m: m.startswith("psenet_stream.io.") or m == "psenet_stream.io"),
        ("torch_tensorrt", lambda m: m == "psenet_stream.backends.tensorrt"),
    ],
)
def test_only_one_room_imports(top, allowed):
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for m, p in MODULES.items()
        for name, line in _imports(p)
        if (name == top or name.startswith(top + ".")) and not allowed(m)
    ]
    assert not bad, "\n".join(bad)


def test_the_cli_surface_imports_neither_torch_nor_av():
    """``import psenet_stream`` and building the CLI (what --help needs) stay light and GPU-free."""
    import subprocess
    import sys

    code = (
        "import sys, psenet_stream, psenet_stream.cli as c\n"
        "from psenet_stream.commands import enhance, webcam, doctor\n"
        "heavy = [m for m in ('torch', 'av', 'cv2', 'torch_tensorrt') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out == "", f"importing the CLI pulled in {out}"
