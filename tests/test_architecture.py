"""merbench's imports point one way, down the layers below (docs/architecture.md draws them).

The graph is read from the source with ``ast``: every ``import`` of a merbench module, at
module level or inside a function. It must have no circle, no arrow from a layer to a higher
one, and an import inside a function must say why on its line or the line above (a comment
naming an optional dependency or start-up speed), so that no import hides in a function to
make a circle import at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "merbench"

# Bottom to top. A module may import modules of its own layer and of the layers before it.
# An entry names a module, or with ".*" every module of a package not named more exactly.
LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["merbench._version", "merbench.errors", "merbench.optional", "merbench.atomic", "merbench.ranges",
              "merbench.registry", "merbench.signature", "merbench.metrics", "merbench.results", "merbench.lock",
              "merbench.recipe_paths", "merbench.predictions", "merbench.checkpoints", "merbench.device",
              "merbench.width"]),
    ("data", ["merbench.data", "merbench.data.*"]),
    ("features", ["merbench.features", "merbench.features.*", "merbench.data.real"]),
    ("models", ["merbench.models", "merbench.models.*", "merbench.plugins"]),
    ("recipe", ["merbench.recipe", "merbench.references"]),
    ("training", ["merbench.run_folder", "merbench.evaluate", "merbench.run_files", "merbench.train"]),
    ("runs", ["merbench.run", "merbench.aggregate", "merbench.tables", "merbench.figures", "merbench.check",
              "merbench.significance", "merbench.robustness", "merbench.probes"]),
    ("grids", ["merbench.grid", "merbench.grid.*"]),
    ("experiments", ["merbench.experiments", "merbench.experiments.*", "merbench.tuning", "merbench.tuning.*"]),
    ("api", ["merbench.api"]),
    ("cli", ["merbench.cli", "merbench.cli.*", "merbench.__main__", "merbench"]),
]

# Words one of which a comment must hold, on the line of an import inside a function or above
# its block of imports: why it is there.
REASONS = ("optional", "start-up", "startup")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool, int]]:
    """(imported merbench module, line, inside a function, first line of its block) for every
    import in the file; a block is a run of import statements one after the other."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def module_of(dotted: str) -> str:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted

    found = []
    block: dict[int, int] = {}  # id of an import statement -> first line of its block

    def visit(node: ast.AST, in_function: bool) -> None:
        for field in ("body", "orelse", "finalbody"):
            head = None
            statements = getattr(node, field, None)
            for statement in statements if isinstance(statements, list) else []:
                if isinstance(statement, (ast.Import, ast.ImportFrom)):
                    head = head or statement.lineno
                    block[id(statement)] = head
                else:
                    head = None
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            head = block.get(id(child), getattr(child, "lineno", 0))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "merbench":
                        found.append((module_of(alias.name), child.lineno, in_function, head))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                if source.split(".")[0] == "merbench":
                    for alias in child.names:
                        # "from merbench.x import y": y may be a module of its own
                        target = f"{source}.{alias.name}"
                        found.append((target if target in known else module_of(source), child.lineno, in_function,
                                      head))
            visit(child, inner)

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    # Imports under "if TYPE_CHECKING:" never run; they are annotations, not arrows.
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    visit(tree, False)
    return [(target, line, inner, head) for target, line, inner, head in found if target and target != name]


def layer_of(name: str) -> int | None:
    """The layer index of a module: its exact entry, else the longest "package.*" entry."""
    best, best_len = None, -1
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if entry == name:
                return index
            if entry.endswith(".*") and name.startswith(entry[:-1]) and len(entry) > best_len:
                best, best_len = index, len(entry)
    return best


def import_graph(root: Path = ROOT) -> dict[str, list[tuple[str, int, bool, int]]]:
    known = module_files(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def find_circle(graph: dict[str, list[tuple[str, int, bool, int]]]) -> list[str] | None:
    """One circle of the graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target, *_ in graph.get(node, []):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                circle = walk(target)
                if circle:
                    return circle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            circle = walk(node)
            if circle:
                return circle
    return None


def upward(graph) -> list[str]:
    found = []
    for name, targets in sorted(graph.items()):
        for target, line, *_ in targets:
            if None not in (layer_of(name), layer_of(target)) and layer_of(target) > layer_of(name):
                found.append(f"{name} (line {line}, layer {LAYERS[layer_of(name)][0]}) imports {target} "
                             f"(layer {LAYERS[layer_of(target)][0]})")
    return found


def unexplained(graph, files) -> list[str]:
    found = []
    top = files["merbench"].parent.parent
    for name, targets in sorted(graph.items()):
        lines = files[name].read_text(encoding="utf-8").splitlines()
        for target, line, inner, head in targets:
            if not inner:
                continue
            # the line above the import's block, and the import's own line
            said = [text.split("#", 1)[1] for text in (lines[head - 2] if head > 1 else "", lines[line - 1])
                    if "#" in text]
            if not any(reason in " ".join(said).lower() for reason in REASONS):
                found.append(f"{files[name].relative_to(top)}:{line} imports {target} inside a function "
                             f"without a comment saying why (optional dependency or start-up)")
    return found


GRAPH = import_graph()
FILES = module_files()


def test_every_module_has_a_layer():
    assert [name for name in FILES if layer_of(name) is None] == []


def test_no_import_circle():
    circle = find_circle(GRAPH)
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_no_import_points_up_the_layers():
    assert upward(GRAPH) == []


def test_every_import_inside_a_function_says_why():
    assert unexplained(GRAPH, FILES) == []


# The checks themselves, on a small tree written here: each must catch what it guards against.

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "merbench" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "merbench"


def test_a_circle_through_a_function_import_is_found(tmp_path):
    root = _tree(tmp_path, {"__init__.py": "", "errors.py": "def f():\n    import merbench.api  # start-up\n",
                            "api.py": "from merbench.errors import f\n"})
    graph = import_graph(root)
    assert find_circle(graph) == ["merbench.api", "merbench.errors", "merbench.api"]
    assert upward(graph) == ["merbench.errors (line 2, layer base) imports merbench.api (layer api)"]


def test_an_unexplained_function_import_is_found(tmp_path):
    root = _tree(tmp_path, {"__init__.py": "", "api.py": "def f():\n    from merbench import errors\n",
                            "errors.py": "", "cli/__init__.py": "",
                            "cli/app.py": "def g():\n    # start-up: torch\n    from merbench import api\n"
                                          "    from merbench import errors\n    x = 1\n    from merbench import api\n"})
    graph = import_graph(root)
    assert graph["merbench.api"] == [("merbench.errors", 2, True, 2)]
    assert unexplained(graph, module_files(root)) == [
        "merbench/api.py:2 imports merbench.errors inside a function without a comment saying why "
        "(optional dependency or start-up)",
        "merbench/cli/app.py:6 imports merbench.api inside a function without a comment saying why "
        "(optional dependency or start-up)"]


@pytest.mark.parametrize("name, layer", [("merbench.data.real", "features"), ("merbench.data.types", "data"),
                                         ("merbench.cli.train", "cli"), ("merbench", "cli")])
def test_layer_of_prefers_the_exact_entry(name, layer):
    assert LAYERS[layer_of(name)][0] == layer


def test_help_imports_neither_torch_nor_scikit_learn():
    """`merbench --help` is the start-up every command pays: the heavy libraries are imported
    where they are used (docs/benchmarks.md has the timings)."""
    import subprocess
    import sys

    script = ("import sys\nfrom merbench.cli.app import app\nsys.argv = ['merbench', '--help']\n"
              "try:\n    app()\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('torch', 'sklearn', 'optuna', 'transformers') if m in sys.modules), file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr
