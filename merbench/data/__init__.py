"""Dataset readers, one module per format, and the synthetic corpus.

``merbench.registry.DATASETS`` imports the modules that register datasets (``synthetic``,
``real``) on its first lookup; ``readers`` imports every format module.
"""
