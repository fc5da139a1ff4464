"""Model families, one per file; importing this package registers every model, merbench's
own and then the plugins' (``merbench.plugins``: --plugin, MERBENCH_PLUGINS, entry points)."""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name not in ("base", "build"):
        importlib.import_module(f"{__name__}.{_info.name}")

from merbench.plugins import load_plugins  # noqa: E402  (after merbench's own: a clash names them)

load_plugins()
