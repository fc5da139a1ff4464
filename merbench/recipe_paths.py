"""Where recipes come from: one rule, which every command follows through this module.

1. A recipe path that exists (``train PATH``, ``--recipe PATH``, an ``extends`` line) is that file.
2. A grid command's ``--dataset D`` with model ``M`` reads ``<--recipes DIR>/D/M.yaml`` when
   ``--recipes`` is given; else ``./recipes/D/M.yaml`` when the working directory holds one;
   else the recipe packaged with merbench.
3. A recipe path that does not exist names the packaged recipe of the same last two parts:
   ``recipes/synthetic/hff.yaml``, ``synthetic/hff.yaml`` and ``synthetic/hff`` all name the
   packaged ``synthetic/hff.yaml`` (only a ``.yaml`` suffix or none: ``mlp.yml`` is an error
   naming the closest recipe), so the README's commands work from any folder after
   ``pip install merbench``, and a user's own recipe can ``extends: ../base/synthetic.yaml``
   without copying the packaged base.

Recipes and the papers' reported numbers (``references/``) ship inside the package. In a
clone, ``merbench/recipes`` is a symlink to the top-level ``recipes/`` folder.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from merbench.errors import MerbenchError
from merbench.registry import closest

PACKAGED = (Path(__file__).parent / "recipes").resolve()  # in a clone: the top-level recipes/
REFERENCES = PACKAGED / "references"
LOCAL = Path("recipes")  # relative: the working directory's recipes/ folder


def packaged_names() -> list[str]:
    """Every packaged recipe as ``<dataset>/<model>`` (``base/`` and ``references/`` included)."""
    return sorted(str(p.relative_to(PACKAGED).with_suffix("")) for p in PACKAGED.glob("*/*.yaml"))


def find_recipe(path: Path | str) -> Path:
    """Rules 1 and 3: the file when it exists, else the packaged recipe it names."""
    path = Path(path)
    if path.is_file():
        return path
    parts = Path(os.path.normpath(path)).parts
    # Only a name ending in .yaml, or in no suffix at all, names a packaged recipe: a typo such
    # as mlp.yml is an error (with the closest name), never a silent packaged mlp.yaml.
    if len(parts) >= 2 and Path(parts[-1]).suffix in ("", ".yaml"):
        name = Path(*parts[-2:])
        packaged = PACKAGED / (name if name.suffix == ".yaml" else name.with_suffix(".yaml"))
        if packaged.is_file():
            return packaged
    names = runnable_names()
    key = "/".join(parts[-2:]).removesuffix(".yaml")
    # The few nearest names (of the same dataset first), then where to see them all.
    same = [n for n in names if n.split("/")[0] == key.split("/")[0]]
    near = difflib.get_close_matches(key, same, n=3, cutoff=0) if same else difflib.get_close_matches(key, names, n=3)
    raise MerbenchError(f"{path}: no such recipe file, nor a packaged recipe of that name{closest(key, names)}"
                        f"{'; nearest: ' + ', '.join(near) if near else ''} (every packaged recipe: "
                        f"merbench recipes list)")


def runnable_names() -> list[str]:
    """The packaged recipes a command can run, as ``<dataset>/<model>`` (no ``base/``,
    ``references/``, ``spaces/``)."""
    return [n for n in packaged_names() if not n.startswith(("base/", "references/", "spaces/"))]


def recipe_for(dataset: str, model: str, root: Path | str | None = None) -> Path:
    """Rule 2: the recipe of ``model`` on ``dataset``."""
    if root is not None:
        path = Path(root) / dataset / f"{model}.yaml"
        if not path.is_file():
            raise MerbenchError(f"{path}: no recipe for model {model!r} on dataset {dataset!r} "
                                f"(write one, or pass --recipe PATH)")
        return path
    local = LOCAL / dataset / f"{model}.yaml"
    if local.is_file():
        return local
    packaged = PACKAGED / dataset / f"{model}.yaml"
    if packaged.is_file():
        return packaged
    raise MerbenchError(f"{local}: no recipe for model {model!r} on dataset {dataset!r}, here or packaged "
                        f"with merbench (write one, or pass --recipe PATH)")


def recipe_roots(root: Path | str | None = None) -> list[Path]:
    """The folders rule 2 reads, first match first: for listings such as ``compare --models all``."""
    if root is not None:
        return [Path(root)]
    return [LOCAL, PACKAGED] if LOCAL.is_dir() and LOCAL.resolve() != PACKAGED else [PACKAGED]
