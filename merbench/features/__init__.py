"""Feature extraction: extractors per modality and the cache.

``merbench.registry.EXTRACTORS`` imports the extractor modules (``audio``, ``text``,
``vision``) on its first lookup.

Heavy libraries (transformers, librosa, PyAV) are imported only when an extractor runs.
"""
