"""Numbers that papers report, read from ``recipes/references/<name>.yaml`` (packaged with merbench).

These files hold what a paper printed, with its citation, so tables can set merbench's
results beside the paper's. They are typed from the paper once and never from a run.
"""

from __future__ import annotations

import yaml

from merbench.errors import MerbenchError
from merbench.recipe_paths import REFERENCES
from merbench.registry import closest


def reference_names() -> list[str]:
    return sorted(p.stem for p in REFERENCES.glob("*.yaml"))


def load_reference(name: str) -> dict:
    """The reference file of ``name`` (e.g. "hff") as a dict with ``citation`` and ``tables``."""
    path = REFERENCES / f"{name}.yaml"
    if not path.exists():
        names = reference_names()
        raise MerbenchError(f"{path}: no reference file for {name!r}{closest(name, names)}; "
                            f"valid: {', '.join(names) or f'none (is {REFERENCES} present?)'}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise MerbenchError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict) or "citation" not in data or not isinstance(data.get("tables"), dict):
        raise MerbenchError(f"{path}: expected a mapping with 'citation' and 'tables'")
    return data
