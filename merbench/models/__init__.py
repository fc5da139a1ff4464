"""Model families, one per file (``hff.py``, ``tfn.py``, ...), on the shared ``base`` and ``_blocks``.

Importing this package imports no model: ``merbench.registry.MODELS`` imports
``models.registered`` (every model file, then the plugins) on its first lookup, and
``models.declared`` reads what the files declare without importing them.
"""
