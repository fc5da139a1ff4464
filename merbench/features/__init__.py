"""Feature extraction: extractors per modality (importing registers them) and the cache.

Heavy libraries (transformers, librosa, PyAV) are imported only when an extractor runs.
"""

from merbench.features import audio, text, vision  # noqa: F401  (register extractors)
