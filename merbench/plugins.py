"""Your own model, from outside merbench's package.

A model in your own file or package registers with one decorator::

    import merbench
    from merbench.models.base import MerModel, Output

    @merbench.register_model("gated_sum")
    class GatedSum(MerModel):
        level = "utterance"
        ...

and merbench finds it in one of three ways, all loaded when the model registry is:

- ``merbench --plugin path/to/my_model.py COMMAND ...`` (repeatable; before the command);
- the environment variable ``MERBENCH_PLUGINS``: files separated by ``os.pathsep``;
- an installed package's entry point in the group ``merbench.models`` (its value: a module
  whose import registers models, or a ``MerModel`` class, registered under the entry's name).

``--plugin`` adds its files to ``MERBENCH_PLUGINS``, so grid workers (subprocesses, submitit
jobs) load the same plugins. The registry entry records the file that defines the class and
its sha256: a run of a plugin model writes both into result.json's provenance, and the run id
includes the hash, so editing the plugin makes a new run instead of reusing the old one.

The contract is checked when the model registers; a breach is one line naming the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from merbench.errors import MerbenchError
from merbench.registry import MODELS
from merbench.signature import keyword_defaults

ENV = "MERBENCH_PLUGINS"
GROUP = "merbench.models"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LEVELS = ("utterance", "dialogue")
INPUTS = ("vectors", "frames")


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin model comes from: the file defining its class and that file's sha256."""

    file: str
    sha256: str
    origin: str  # "--plugin / MERBENCH_PLUGINS", "entry point NAME (DIST VERSION)" or "python"

    def record(self) -> dict[str, str]:
        return asdict(self)


_origin: str | None = None  # set while a plugin file or entry point is being imported
_loaded: set[str] = set()  # files and entry points already imported by this process
_registered: list[str] = []  # every name register_model registered, in order


def file_sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def plugin_of(model: str) -> PluginSource | None:
    """The plugin that registered ``model``, or None for merbench's own (and unknown) models."""
    return MODELS.entry(model).meta.get("plugin") if model in MODELS else None


def register_model(name: str, *, tiny: bool = False) -> Callable[[type], type]:
    """Class decorator: register a ``MerModel`` subclass as model ``name`` (its contract is
    checked here; ``tiny=True`` hides it from ``merbench models`` and ``compare --models all``)."""

    def add(cls: type) -> type:
        file = _defining_file(cls)
        where = f"{file}: model {name!r}" if file else f"model {name!r}"
        check_contract(name, cls, where)
        # A class typed into an interactive session has no file to hash.
        source = PluginSource(file, file_sha256(file), _origin or "python") if file else PluginSource("", "", "python")
        previous = plugin_of(name)
        # The same file (or notebook) defining the model again replaces it: a re-run cell, or a
        # file imported both by the user and through MERBENCH_PLUGINS.
        again = previous is not None and previous.file == source.file
        if name in MODELS and not again:
            raise MerbenchError(f"{where}: the name is taken by {_owner(name)}; choose another name")
        MODELS.register(name, cls, replace=again, tiny=tiny, plugin=source)
        _registered.append(name)
        return cls

    return add


def check_contract(name: str, cls: Any, where: str) -> None:
    """What the training loop and the grid commands rely on (merbench/models/base.py)."""
    # start-up: torch only when this runs
    from merbench.models.base import MerModel
    from merbench.models.build import RESERVED

    if not isinstance(name, str) or not NAME.match(name):
        raise MerbenchError(f"{where}: a model name is lower-case letters, digits and _, starting with a letter")
    if not (isinstance(cls, type) and issubclass(cls, MerModel)):
        raise MerbenchError(f"{where}: expected a subclass of merbench.models.base.MerModel, got {cls!r}")
    if not any("level" in vars(k) for k in cls.__mro__ if k not in (MerModel, object)):
        raise MerbenchError(f"{where}: {cls.__name__} does not set 'level' (a class attribute: "
                            f"{' or '.join(map(repr, LEVELS))})")
    if cls.level not in LEVELS:
        raise MerbenchError(f"{where}: {cls.__name__}.level is {cls.level!r}; expected {' or '.join(map(repr, LEVELS))}")
    if cls.inputs not in INPUTS:
        raise MerbenchError(f"{where}: {cls.__name__}.inputs is {cls.inputs!r}; expected {' or '.join(map(repr, INPUTS))}")
    if cls.forward is MerModel.forward:
        raise MerbenchError(f"{where}: {cls.__name__} does not define forward(batch) -> Output")
    params = list(inspect.signature(cls.__init__).parameters)[1:3]
    if params != list(RESERVED):
        raise MerbenchError(f"{where}: {cls.__name__}.__init__ must take ({', '.join(RESERVED)}, ...) first; "
                            f"it takes ({', '.join(params)}, ...)")
    if not isinstance(cls.components, tuple) or not all(isinstance(c, str) for c in cls.components):
        raise MerbenchError(f"{where}: {cls.__name__}.components must be a tuple of switch names, "
                            f"got {cls.components!r}")
    defaults = keyword_defaults(cls, RESERVED)
    for switch in cls.components:
        if not isinstance(defaults.get(switch), bool):
            got = "not a constructor argument" if switch not in defaults else f"its default is {defaults[switch]!r}"
            raise MerbenchError(f"{where}: component {switch!r} must be a constructor argument with a bool "
                                f"default (the ablation switch); {got}")


def load_plugins(paths: list[str] | None = None) -> None:
    """Import the plugin files named by ``paths`` and ``MERBENCH_PLUGINS``, then every entry
    point of the ``merbench.models`` group. Each is imported once per process."""
    for path in [*(paths or []), *env_paths()]:
        load_file(path)
    for entry in metadata.entry_points(group=GROUP):
        load_entry_point(entry)


def in_use() -> bool:
    """Whether this process has, or will load, a model that is not merbench's own."""
    return bool(_registered or env_paths() or metadata.entry_points(group=GROUP))


def env_paths() -> list[str]:
    return [p for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]


def use_plugins(paths: list[str | Path]) -> None:
    """``--plugin``: absolute paths first in ``MERBENCH_PLUGINS``, which subprocesses inherit;
    loaded now when the model registry already is (else importing it loads them)."""
    for path in paths:
        if not Path(path).is_file():
            raise MerbenchError(f"--plugin {path}: no such file (expected a Python file that registers a model)")
    new = [str(Path(p).resolve()) for p in paths]
    os.environ[ENV] = os.pathsep.join(dict.fromkeys([*new, *env_paths()]))
    if MODELS.loaded:
        load_plugins()


def load_file(path: str | Path) -> None:
    global _origin
    file = Path(path).expanduser().resolve()
    if str(file) in _loaded:
        return
    if not file.is_file() or file.suffix != ".py":
        raise MerbenchError(f"{path}: no such plugin file (--plugin or {ENV}: expected a .py file that "
                            f"registers a model)")
    _loaded.add(str(file))
    before = len(_registered)
    module_name = f"merbench_plugin_{re.sub(r'[^0-9a-zA-Z_]', '_', file.stem)}_{file_sha256(file)[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look classes up here
    _origin = f"--plugin / {ENV}"
    try:
        spec.loader.exec_module(module)
    except MerbenchError:
        raise  # a contract breach, already naming the file
    except Exception as e:  # noqa: BLE001  any failure of the user's file is one line naming it
        raise MerbenchError(f"{file}: the plugin failed to import: {_one_line(e)}") from None
    finally:
        _origin = None
    if len(_registered) == before:
        raise MerbenchError(f"{file}: registers no model (decorate a MerModel subclass with "
                            f"@merbench.register_model(\"name\"))")


def load_entry_point(entry: metadata.EntryPoint) -> None:
    global _origin
    key = f"{entry.name}={entry.value}"
    if key in _loaded:
        return
    _loaded.add(key)
    dist = f"{entry.dist.name} {entry.dist.version}" if getattr(entry, "dist", None) else "an installed package"
    where = f"entry point {entry.name} = {entry.value} ({GROUP}, from {dist})"
    _origin = f"entry point {entry.name} ({dist})"
    try:
        obj = entry.load()
        if isinstance(obj, type) and not any(e.obj is obj for e in MODELS.entries()):
            register_model(entry.name)(obj)  # a class named by the entry point itself
    except MerbenchError:
        raise
    except Exception as e:  # noqa: BLE001
        raise MerbenchError(f"{where}: the plugin failed to import: {_one_line(e)}") from None
    finally:
        _origin = None


def _defining_file(cls: Any) -> str | None:
    try:
        return inspect.getsourcefile(cls)
    except TypeError:  # a class typed into an interactive session has no file
        return None


def _owner(name: str) -> str:
    source = plugin_of(name)
    return f"the plugin {source.file}" if source else "a model of merbench"


def _one_line(e: BaseException) -> str:
    if isinstance(e, SyntaxError):
        return f"SyntaxError at line {e.lineno}: {e.msg}"
    text = str(e).strip().splitlines()
    where = ""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" (line {tb.tb_lineno} of {Path(tb.tb_frame.f_code.co_filename).name})"
    return f"{type(e).__name__}: {text[0] if text else ''}{where}"
