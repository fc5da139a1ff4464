"""A study's storage: the database Optuna keeps it in, its sampler and pruner.

Its own module, below both the study (``tuning.study``, which asks and tells) and a trial's
process (``tuning.worker``, whose epoch hook reports to the same storage), so that neither
imports the other. Optuna is imported only inside these functions (``merbench[tune]``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from merbench.errors import MerbenchError, one_line

STUDY_DB = "study.db"  # the default storage, inside the tune folder


def storage_url(tune_dir: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(Path(tune_dir) / STUDY_DB).absolute()}"


def shown_url(url: str) -> str:
    """The URL without its password (it goes into tune.json and messages)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: the error that opens it says so
        return url


_storages: dict = {}  # (url, create) -> RDBStorage: one engine per database and process


def open_storage(url: str, create: bool = True):
    """Optuna's RDBStorage for ``url``; one line naming the URL when it cannot be opened."""
    if (url, create) not in _storages:
        _storages[(url, create)] = _open_storage(url, create)
    return _storages[(url, create)]


def _open_storage(url: str, create: bool):
    import optuna

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, skip_table_creation=not create)
    except Exception as e:  # a bad URL, a missing driver, a server that does not answer
        raise MerbenchError(f"--storage {shown_url(url)}: cannot be opened ({one_line(str(e) or type(e).__name__)})"
                            ) from None


def make_sampler(kind: str, seed: int, number: int, parallel: int):
    """The sampler for trial ``number``: seeded from the study's seed and the number, so a
    resumed study asks for what an uninterrupted one would."""
    import optuna

    trial_seed = (seed * 1_000_003 + number) % 2**32
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=trial_seed)
    # constant_liar: with trials in flight, TPE counts them as poor so parallel trials spread out.
    return optuna.samplers.TPESampler(seed=trial_seed, constant_liar=parallel > 1)


def make_pruner(kind: str, prune_after: int):
    import optuna

    if kind == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=prune_after)


def load_study(info: dict):
    """The study described by ``info`` (its name, storage URL and pruner), from any process."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=info["name"], storage=open_storage(info["url"]),
                             pruner=make_pruner(info["pruner"], info["prune_after"]))
