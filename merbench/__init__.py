"""merbench: reproduce, compare and stress-test multimodal emotion recognition models.

The Python API (docs/python.md) is re-exported here and imported on first use, so that
``import merbench`` stays light (no torch until a function that needs it is called)::

    import merbench
    run = merbench.train("synthetic/tfn", **{"train.seed": 1})
    run.metrics["test"]["wf1"], run.model()
"""

__version__ = "0.1.0"

# name -> module that defines it (merbench.api re-exports the Run type and load_run).
_API = {name: "merbench.api" for name in ("load_run", "load_results", "results_frame", "compare", "ablate",
                                          "heads_sweep", "tune", "Run", "GridReport", "TuneReport")}
_API["RunnerOptions"] = "merbench.grid"
_API["MerbenchError"] = "merbench.errors"
# Your own model (docs/plugins.md): @merbench.register_model("name") on a merbench.MerModel.
_API["register_model"] = "merbench.plugins"
_API.update({name: "merbench.models.base" for name in ("MerModel", "Output")})

__all__ = ["__version__", "train", *_API]


def __getattr__(name: str):
    if name == "train":
        # The submodule merbench.train is bound to this name as soon as anything imports it; it
        # is callable and calls merbench.api.train, so merbench.train(...) is the API function.
        import importlib

        return importlib.import_module("merbench.train")
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'merbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
