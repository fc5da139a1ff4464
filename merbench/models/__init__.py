"""Model families, one per file; importing this package registers every model."""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name not in ("base", "build"):
        importlib.import_module(f"{__name__}.{_info.name}")
