"""Importing this module registers every model: merbench's own files, then the plugins'
(``merbench.plugins``: --plugin, MERBENCH_PLUGINS, entry points; after merbench's own, so a
clash names them). ``merbench.registry.MODELS`` imports it on its first lookup."""

import importlib
import pkgutil

import merbench.models
from merbench.models.declared import NOT_MODELS
from merbench.plugins import load_plugins

for _info in pkgutil.iter_modules(merbench.models.__path__):
    if not _info.name.startswith("_") and _info.name not in NOT_MODELS:
        importlib.import_module(f"merbench.models.{_info.name}")

load_plugins()
