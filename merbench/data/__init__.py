"""Dataset readers, one module per format, and the synthetic corpus; importing registers them."""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name not in ("types", "batching"):
        importlib.import_module(f"{__name__}.{_info.name}")
