"""merbench: reproduce, compare and stress-test multimodal emotion recognition models.

The Python API (docs/python.md) is re-exported here and imported on first use, so that
``import merbench`` stays light (no torch until a function that needs it is called)::

    import merbench
    run = merbench.train("synthetic/tfn", **{"train.seed": 1})
    run.metrics["test"]["wf1"], run.model()
"""

import importlib
import sys
import types

from merbench._version import __version__

# name -> module that defines it (merbench.api re-exports the Run type and load_run).
_API = {name: "merbench.api" for name in ("load_run", "load_results", "results_frame", "compare", "ablate",
                                          "heads_sweep", "table", "tune", "extract", "finetune", "Run", "GridReport",
                                          "TableReport", "TuneReport", "Extraction", "FinetuneReport")}
_API["RunnerOptions"] = "merbench.grid"
_API["MerbenchError"] = "merbench.errors"
_API["Terminated"] = "merbench.errors"
# Your own model (docs/plugins.md): @merbench.register_model("name") on a merbench.MerModel.
_API["register_model"] = "merbench.plugins"
_API.update({name: "merbench.models.base" for name in ("MerModel", "Output")})

__all__ = ["__version__", "train", *_API]


class _TrainModule(types.ModuleType):
    """The training-loop module ``merbench.train``, callable as the API's ``train``.

    Importing the submodule ``merbench.train`` binds it to the package attribute ``train``, the
    name of the API function: so the package makes that module callable, and
    ``merbench.train(recipe, ...)`` calls ``merbench.api.train``, while
    ``from merbench.train import train`` is still the loop. The loop itself knows nothing of the API.
    """

    def __call__(self, *args, **kwargs):
        # start-up: the API (torch, the grids) is imported on the first call, not by ``import merbench``
        from merbench.api import train

        return train(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        if name == "train" and type(value) is types.ModuleType:  # the import system binding the submodule
            value.__class__ = _TrainModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name == "train":
        return importlib.import_module("merbench.train")  # binds itself through _Package.__setattr__
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'merbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
