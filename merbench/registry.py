"""One small registry class; instances hold models, datasets and extractors.

A duplicate name is an error; a miss names the closest valid names. Every list shown to a
user comes from a registry, never from a hand-kept list.

A registry fills itself: its first lookup imports the modules that register its entries
(``load``), so no caller imports a package just so that a registry fills.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from merbench.errors import MerbenchError

T = TypeVar("T")


def closest(name: str, valid: list[str] | tuple[str, ...] | Any) -> str:
    """' (did you mean X?)' for the nearest valid name, or '' when nothing is close."""
    matches = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.5)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


@dataclass
class Entry(Generic[T]):
    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Named entries of one kind (``kind`` is used in error messages)."""

    def __init__(self, kind: str, hint: str = "", load: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.hint = hint  # appended to the error for a name that is not registered
        self._entries: dict[str, Entry[T]] = {}
        self._load = load  # modules whose import registers the entries, imported on first lookup
        self._loaded = not load

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """Import the modules that register this registry's entries (once; every lookup calls it)."""
        if self._loaded:
            return
        self._loaded = True  # first: those modules look names up while they register
        try:
            for module in self._load:
                importlib.import_module(module)
        except BaseException:
            self._loaded = False
            raise

    def register(self, name: str, obj: T | None = None, *, replace: bool = False, **meta: Any) -> Any:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted.
        ``replace``: a new definition of the same entry (a plugin file loaded again)."""

        def add(target: T) -> T:
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, target, dict(meta))
            return target

        if obj is None:
            return add
        return add(obj)

    def entry(self, name: str) -> Entry[T]:
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            raise MerbenchError(
                f"unknown {self.kind} {name!r}{closest(name, self._entries)}; valid: {self.listed()}{self.hint}"
            ) from None

    def listed(self) -> str:
        """The names an error offers: the tiny test variants (``tiny=True``) counted, not named."""
        shown = [n for n in self.names() if not self._entries[n].meta.get("tiny")]
        hidden = len(self._entries) - len(shown)
        return ", ".join(shown) + (f" (and {hidden} tiny test variants: merbench {self.kind}s --tiny)"
                                   if hidden else "")

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        for name in self.names():
            yield self._entries[name]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __len__(self) -> int:
        self.load()
        return len(self._entries)


Factory = Callable[..., Any]
# merbench's own models, then the plugins' (merbench/models/registered.py).
MODELS: Registry[Factory] = Registry("model", "; a model of your own: merbench --plugin FILE (docs/plugins.md)",
                                     load=("merbench.models.registered",))
DATASETS: Registry[Factory] = Registry("dataset", load=("merbench.data.synthetic", "merbench.data.real"))
EXTRACTORS: Registry[Factory] = Registry("extractor", load=("merbench.features.audio", "merbench.features.text",
                                                            "merbench.features.vision"))
