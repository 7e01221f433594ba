"""The package's import graph points one way: no circle, no import that climbs, no private name across modules.

Every import is read from the source (those inside functions too); imports
under ``if TYPE_CHECKING:`` are types only and are left out, as the layering
allows ("nothing below the run layer imports the config, except as a type").
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trainwell"

# The floors, bottom up, and which floors each may import from (its own included).
LAYERS = {
    "ground": ("trainwell.errors", "trainwell.registry", "trainwell.io", "trainwell.metrics"),
    "parts": ("trainwell.nn", "trainwell.init", "trainwell.losses", "trainwell.regularize", "trainwell.data",
              "trainwell.optim", "trainwell.one_class"),
    "models": ("trainwell.models", "trainwell.components"),
    "config": ("trainwell.config",),
    "loop": ("trainwell.loop",),
    "doctor": ("trainwell.doctor",),
    "runs": ("trainwell.runs",),
    "selection": ("trainwell.selection",),
    "faces": ("trainwell.cli", "trainwell.__main__", "trainwell.lab", "trainwell.report", "trainwell.serve",
              "trainwell.playground", "trainwell.tune"),
}
MAY_IMPORT = {
    "ground": {"ground"},
    "parts": {"ground", "parts"},
    "models": {"ground", "parts", "models"},
    "config": {"ground", "parts", "models", "config"},
    "loop": {"ground", "parts", "loop"},
    "doctor": {"ground", "parts", "loop", "doctor"},
    "runs": {"ground", "parts", "models", "config", "loop", "doctor", "runs"},
    "selection": {"ground", "parts", "models", "config", "loop", "doctor", "runs", "selection"},
    "faces": set(LAYERS),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str | None:
    for layer, prefixes in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    return None


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path, modules: set[str]) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for each import of a trainwell module in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("trainwell")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trainwell"):
            for a in node.names:  # `from trainwell.x import y` imports the module trainwell.x.y when there is one
                sub = f"{node.module}.{a.name}"
                found.append((sub, [], node.lineno) if sub in modules else (node.module, [a.name], node.lineno))
    return found


@pytest.fixture(scope="module")
def graph():
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: _imports(p, set(files)) for m, p in files.items()}


def test_every_module_has_a_floor(graph):
    assert [m for m in graph if m != "trainwell" and _layer(m) is None] == []


def test_no_import_climbs_a_floor(graph):
    climbing = [f"{m}:{line} imports {target} ({_layer(m)} may not import {_layer(target)})"
                for m, imports in graph.items() if m != "trainwell"
                for target, _, line in imports if _layer(target) not in MAY_IMPORT[_layer(m)]]
    assert climbing == []


def _private(name: str) -> bool:
    """``_name`` is private; ``__version__`` and the like are the module's public dunders."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_name_crosses_modules(graph):
    private = [f"{m}:{line} imports {name} from {target}" for m, imports in graph.items()
               for target, names, line in imports for name in names if _private(name) and target != m]
    private += [f"{m}:{line} imports the private module {target}" for m, imports in graph.items()
                for target, _, line in imports if any(_private(p) for p in target.split(".")[1:])]
    assert private == []


def _circles(edges: dict[str, list[str]]) -> list[list[str]]:
    """Every circle a depth-first walk of ``edges`` meets (module -> modules it imports)."""
    state: dict[str, int] = {}
    circles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in edges.get(m, ()):
            if state.get(t) == 1:
                circles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    return circles


def test_no_import_circle(graph):
    # the package's facade re-exports the floors; nothing below imports it back
    edges = {m: sorted({t for t, _, _ in imports if t in graph and t not in (m, "trainwell")})
             for m, imports in graph.items() if m != "trainwell"}
    assert _circles(edges) == []


def test_the_check_sees_a_climbing_import_and_a_circle(tmp_path):
    """The walk itself: a part importing the loop inside a function is found; a type-only import is not."""
    fake = tmp_path / "trainwell"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "augment.py").write_text("def f():\n    from trainwell.loop.callbacks import Callback\n")
    found = _imports(fake / "data" / "augment.py", {"trainwell.loop.callbacks"})
    assert found == [("trainwell.loop.callbacks", ["Callback"], 2)]
    assert _layer("trainwell.data.augment") == "parts" and "loop" not in MAY_IMPORT["parts"]
    (fake / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                   "    from trainwell.config import Config\n")
    assert _imports(fake / "typed.py", set()) == []
    assert _circles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    assert _circles({"a": ["b"], "b": [], "c": ["a", "b"]}) == []
