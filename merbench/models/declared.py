"""What merbench's own model files declare, read from their source without importing them.

Importing a model file imports torch (over a second); listing the models needs none of it:
the names a file registers (``MODELS.register("name", Class | partial(Class, ...), tiny=...)``
at the bottom of the file), each class's ``level``, ``inputs``, ``components`` and its docstring (or the
registration's ``summary=``), and the optional libraries it names through ``optional.names_from``
are all literals in the file. ``merbench models`` lists from here when no plugin is in use
(a plugin is code: it is imported). tests/test_registry.py checks every field against the
imported classes, so the two cannot drift.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
NOT_MODELS = ("base", "build", "declared", "registered")  # the model files are the others (models.registered)
# MerModel's own class attributes (merbench/models/base.py), inherited by a class that sets none.
DEFAULTS = {"level": "utterance", "inputs": "vectors", "components": ()}


@dataclass(frozen=True)
class Declared:
    name: str  # registry name
    class_name: str
    level: str
    inputs: str
    components: tuple[str, ...]
    summary: str  # the registration's summary=, else doc_summary of the class docstring
    tiny: bool
    optional: tuple[str, ...]  # top-level modules the file takes through optional.names_from

    def missing(self) -> str | None:
        """The first optional library the model needs that is not installed (looked up, not imported)."""
        for module in self.optional:
            try:
                if importlib.util.find_spec(module) is None:
                    return module
            except (ImportError, ValueError):
                return module
        return None


class Undeclared(Exception):
    """A model file says something this reader does not follow: import it instead."""


def declared_models(folder: Path = FOLDER) -> list[Declared]:
    """Every model merbench's own files register, in name order; Undeclared when one file
    registers in a way only importing it can tell."""
    found = []
    for path in sorted(folder.glob("*.py")):
        if not path.stem.startswith("_") and path.stem not in NOT_MODELS:
            found.extend(_read(path))
    return sorted(found, key=lambda d: d.name)


def _read(path: Path) -> list[Declared]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    optional = tuple(dict.fromkeys(
        node.value.args[0].value.split(".")[0] for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name) and node.value.func.id == "names_from"
        and node.value.args and isinstance(node.value.args[0], ast.Constant)))
    declared = []
    for node in tree.body:
        call = node.value if isinstance(node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "register"
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "MODELS"):
            continue
        try:
            name = ast.literal_eval(call.args[0])
            target = call.args[1]
            if isinstance(target, ast.Call) and isinstance(target.func, ast.Name) and target.func.id == "partial":
                target = target.args[0]
            cls = classes[target.id]  # type: ignore[attr-defined]
            meta = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        except (IndexError, KeyError, AttributeError, ValueError) as e:
            raise Undeclared(f"{path.name}:{node.lineno}: {type(e).__name__}") from None
        summary = meta.get("summary") or doc_summary(ast.get_docstring(cls, clean=False))
        declared.append(Declared(name, cls.name, *_attributes(cls, path), summary, bool(meta.get("tiny")), optional))
    return declared


def _attributes(cls: ast.ClassDef, path: Path) -> tuple[str, str, tuple[str, ...]]:
    if [ast.unparse(b) for b in cls.bases] != ["MerModel"]:
        raise Undeclared(f"{path.name}: {cls.name} is not a direct MerModel subclass")
    values = dict(DEFAULTS)
    for node in cls.body:
        target = node.target if isinstance(node, ast.AnnAssign) else \
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id in values and node.value is not None:
            try:
                values[target.id] = ast.literal_eval(node.value)
            except ValueError:
                raise Undeclared(f"{path.name}: {cls.name}.{target.id} is not a literal") from None
    return str(values["level"]), str(values["inputs"]), tuple(values["components"])


def doc_summary(doc: str | None) -> str:
    """A docstring's first paragraph as one line of plain text (reStructuredText's double
    backticks dropped): the summary ``merbench models`` and ``datasets`` print."""
    first = (doc or "").strip().split("\n\n")[0]
    return " ".join(first.replace("``", "").split())
