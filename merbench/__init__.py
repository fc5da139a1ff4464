"""merbench: reproduce, compare and stress-test multimodal emotion recognition models."""

__version__ = "0.1.0"
